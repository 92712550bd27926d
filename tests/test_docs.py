from pathlib import Path

from controller import settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_configuration_reference_matches_the_settings_model():
    """docs/configuration.md lists every setting as `homeostat config reference` prints it."""
    assert settings.reference() in (DOCS / "configuration.md").read_text()


def test_example_config_in_the_docs_loads():
    """The example homeostat.yaml shipped in docs/ is valid."""
    loaded = settings.load(DOCS / "homeostat.example.yaml")
    assert loaded.prometheus.url == "http://127.0.0.1:9090"
    assert loaded.alertmanager.bearer_token is not None
