"""A phone's 48 MP photo is read at reduced scale, not refused, and every box comes back in its own pixels."""

import io

import numpy as np
from PIL import Image

from tests.api.conftest import png_bytes

PHONE = (8000, 6000)  # 48 MP, over the default 40 MP pixel limit
AT = (3000, 2000)  # where the face photo is pasted, in the phone photo's pixels
SCALE = 8  # the 250x250 LFW photo grows to 2000x2000: a face as a phone held at arm's length shows it


def phone_photo(face_photo, fmt: str = "JPEG") -> bytes:
    face = Image.open(face_photo).convert("RGB")
    face = face.resize((face.width * SCALE, face.height * SCALE), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", PHONE, (120, 130, 140))
    canvas.paste(face, AT)
    if fmt == "PNG":
        return png_bytes(np.asarray(canvas))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_a_48_megapixel_jpeg_is_enrolled_and_identified_with_boxes_in_its_own_pixels(client, photos):
    big = phone_photo(photos["Emma_Watson"][0])
    assert len(big) < client.app.state.service.settings.max_upload_bytes  # within the byte limit: pixels only

    r = client.post("/api/v1/enroll", data={"name": "Emma Watson"},
                    files=[("images", ("phone.jpg", big, "image/jpeg"))])
    assert r.status_code == 201, r.text
    box = r.json()["faces"][0]["box"]
    # the face sits inside the pasted photo, in the 8000x6000 photo's coordinates (not the reduced decode's)
    assert AT[0] < box[0] < box[2] < AT[0] + 250 * SCALE and AT[1] < box[1] < box[3] < AT[1] + 250 * SCALE, box

    r = client.post("/api/v1/identify", files={"image": ("phone.jpg", big, "image/jpeg")})
    assert r.status_code == 200, r.text
    face = r.json()["faces"][0]
    assert face["person"]["name"] == "Emma Watson"
    assert np.allclose(face["box"], box, atol=2 * SCALE)

    r = client.post("/api/v1/detect", files={"image": ("phone.jpg", big, "image/jpeg")})
    assert r.json()["image"] == {"width": PHONE[0], "height": PHONE[1]}
    # a box given in the photo's pixels picks that face (verify, one face in a box)
    person = client.get("/api/v1/people").json()["items"][0]["id"]
    r = client.post("/api/v1/verify", data={"person_id": person, "box": ",".join(str(v) for v in box)},
                    files={"image": ("phone.jpg", big, "image/jpeg")})
    assert r.status_code == 200 and r.json()["match"] is True, r.text
    assert np.allclose(r.json()["face"]["box"], box, atol=2 * SCALE)


def test_a_png_over_the_pixel_limit_is_still_refused_with_the_limit(client, photos):
    """PNG has no reduced-scale decode: its full pixels would be held, so the pixel limit stands."""
    r = client.post("/api/v1/identify", files={"image": ("big.png", phone_photo(photos["Emma_Watson"][0], "PNG"),
                                                         "image/png")})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "image_too_large" and "8000x6000" in r.json()["error"]["message"]
