"""The OpenAPI document says what the server really sends: typed 200s and the one error shape (issue 12, point 2)."""

from __future__ import annotations

from app.core.schemas import ErrorOut, IdentifyOut, ModelOut

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


def test_every_operation_is_described_with_its_refusals_and_photo_operations_take_json(client):
    """Issue 17, point 5: a document worth generating a client from."""
    spec = client.get("/openapi.json").json()
    problems = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            name = f"{method.upper()} {path}"
            if not op.get("summary") or not op.get("description"):
                problems.append(f"{name}: summary and description")
            statuses = set(op["responses"])
            if "4XX" in statuses:  # the CompreFace-compatible routes: CompreFace's 400s and 404s, never 401 or 422
                statuses |= {"401", "422"}
            if path not in ("/api/v1/health", "/api/v1/ready") and not {"401", "429", "503"} <= statuses:
                problems.append(f"{name}: 401/429/503 not documented ({sorted(statuses)})")
            if ("parameters" in op or "requestBody" in op) and "422" not in statuses:
                problems.append(f"{name}: takes input but documents no 422")
            for param in op.get("parameters", []):
                if param["in"] == "query" and not param.get("description") and not param["schema"].get("description"):
                    problems.append(f"{name}: query parameter {param['name']} undescribed")
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content and "multipart/form-data" not in content:  # a JSON body: its example
                body = content["application/json"]
                if not (body.get("example") or resolve(spec, body["schema"]).get("examples")):
                    problems.append(f"{name}: the JSON body has no example")
            if "multipart/form-data" in content:  # a photo operation: its JSON twin, with an example
                twin = content.get("application/json")
                if not twin or not twin.get("example"):
                    problems.append(f"{name}: no JSON body with an example beside the multipart one")
    assert problems == []


def test_a_client_generated_from_the_document_builds_and_reads_real_answers(client, photos, tmp_path):
    """datamodel-code-generator (the test extra) turns the document into pydantic models that import and validate
    what the server sends."""
    import importlib.util
    import json
    import subprocess
    import sys
    from pathlib import Path

    document, out = tmp_path / "openapi.json", tmp_path / "generated.py"
    document.write_text(json.dumps(client.get("/openapi.json").json()))
    codegen = Path(sys.executable).parent / "datamodel-codegen"
    run = subprocess.run([str(codegen), "--input", str(document), "--input-file-type", "openapi", "--output",
                          str(out), "--output-model-type", "pydantic_v2.BaseModel", "--formatters", "isort"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    spec = importlib.util.spec_from_file_location("generated_faceshot_models", out)
    generated = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generated  # its models name each other lazily, through the module
    try:
        spec.loader.exec_module(generated)
    finally:
        sys.modules.pop(spec.name, None)
    answer = client.post("/api/v1/identify", files=[upload(photos["Emma_Watson"][0])]).json()
    assert generated.IdentifyOut.model_validate(answer).faces[0].box == answer["faces"][0]["box"]
    generated.ErrorOut.model_validate(client.post("/api/v1/identify").json())
    generated.CompareOut.model_validate(client.post("/api/v1/compare", files=[
        upload(photos["Emma_Watson"][0], "image_a"), upload(photos["Emma_Watson"][1], "image_b")]).json())


def test_every_answer_has_an_example_that_its_own_model_accepts(client):
    import app.core.schemas as schemas
    from app.core.openapi_examples import EXAMPLES

    for name, example in EXAMPLES.items():
        getattr(schemas, name).model_validate(example)  # an example cannot drift from the model it documents
    spec = client.get("/openapi.json").json()
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                media = response.get("content", {}).get("application/json")
                if not status.startswith("2") or media is None or path in ("/api/v1/health", "/api/v1/ready"):
                    continue
                schema = resolve(spec, media["schema"])
                items = resolve(spec, schema.get("items", {})) if schema.get("type") == "array" else {}
                if not (media.get("example") or schema.get("examples") or items.get("examples")):
                    missing.append(f"{method.upper()} {path} {status}")
    assert missing == []
