"""`imagenet-sketch report`: one self-contained HTML page for an eval output folder (leaderboard, accuracy on the
line among timm's published models, per class, how it fails, model against model)."""
