from PIL import Image, ImageDraw

from imagenet_sketch_tools.common.images import tone


def test_black_within_jpeg_noise_is_black():
    image = Image.new("L", (64, 64), 0)
    image.putpixel((3, 3), 12)
    assert tone(image) == "black"


def test_an_empty_page_is_blank_and_a_sketch_is_neither():
    page = Image.new("L", (64, 64), 250)
    assert tone(page) == "blank"
    ImageDraw.Draw(page).line((0, 0, 63, 63), fill=20, width=3)
    assert tone(page) is None
