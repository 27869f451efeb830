from imagenet_sketch_tools.dataset.classes import class_names, class_table, find_wnids, label_of_wnid


def test_table_holds_1000_unique_sorted_wnids_and_unique_names():
    wnids, names = class_table()
    assert len(wnids) == 1000 and len(set(wnids)) == 1000
    assert list(wnids) == sorted(wnids)
    assert len(set(names)) == 1000 and all(names)


def test_label_is_the_position_among_sorted_wnids():
    assert label_of_wnid()["n01440764"] == 0
    assert label_of_wnid()["n15075141"] == 999
    assert class_names()[0] == "tench, Tinca tinca"


def test_the_two_cranes_and_two_maillots_are_distinct_classes():
    assert label_of_wnid()["n02012849"] != label_of_wnid()["n03126707"]
    assert label_of_wnid()["n03710637"] != label_of_wnid()["n03710721"]
    assert set(find_wnids("crane")) == {"n02012849"}  # "crane2" is the machine's name in the hub's table
    assert set(find_wnids("maillot")) == {"n03710637", "n03710721"}


def test_find_by_wnid_or_word():
    assert find_wnids("n01440764") == ["n01440764"]
    assert "n01440764" in find_wnids("tench")
    assert find_wnids("no-such-class") == []
