"""AnyVar's REST API (FastAPI): ``uvicorn anyvar.restapi.main:app``."""
