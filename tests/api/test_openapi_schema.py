"""The OpenAPI document says what the server really sends: typed 200s and the one error shape (issue 12, point 2)."""

from __future__ import annotations

from app.schemas import ErrorOut, IdentifyOut, ModelOut

from .conftest import upload


def resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_recognition_operations_document_their_results_and_errors(client):
    spec = client.get("/openapi.json").json()
    expected = {("/api/v1/identify", "post"): ("faces", "took_ms", "encoder"),
                ("/api/v1/verify", "post"): ("match", "distance", "threshold", "person", "face"),
                ("/api/v1/detect", "post"): ("faces", "image", "took_ms"),
                ("/api/v1/model", "get"): ("encoder", "threshold", "threshold_source", "gallery")}
    for (path, method), fields in expected.items():
        responses = spec["paths"][path][method]["responses"]
        ok = resolve(spec, responses["200"]["content"]["application/json"]["schema"])
        assert set(fields) <= set(ok["properties"]), (path, ok)
        errors = [s for s in responses if s[0] in "45"]
        assert {"401", "429", "503"} <= set(errors), (path, errors)
        for status in errors:
            shape = resolve(spec, responses[status]["content"]["application/json"]["schema"])
            body = resolve(spec, shape["properties"]["error"])
            assert set(body["required"]) == {"code", "message", "details"}, (path, status)
    # FastAPI's own {"detail": [...]} never appears: the server does not send it
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_what_the_server_sends_matches_the_documented_models(client, photos):
    ErrorOut.model_validate(client.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][0])],
                                        headers={"X-API-Key": "fs_wrong"}).json())
    ErrorOut.model_validate(client.post("/api/v1/identify").json())  # 422: no image
    IdentifyOut.model_validate(client.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][0])]).json())
    ModelOut.model_validate(client.get("/api/v1/model").json())
