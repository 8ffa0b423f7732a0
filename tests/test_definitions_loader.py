"""Loading definition files: each kind of broken file is caught with its file and line."""

import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servicegate.definitions.loader import FileBroken, load_file
from servicegate.definitions.models import json_schema
from servicegate.definitions.registry import DefinitionRegistry
from tests.support.definitions import settings_for
from tests.support.processes import SERVICEGATE, run_command

ROOT = Path(__file__).resolve().parents[1]

BROKEN = {
    "yaml_syntax": ("name: x\naction: {type: static\n", 3, "YAML syntax"),
    "unknown_key": ("name: x\nbogus: 1\naction: {type: static}\n", 2, "bogus"),
    "reserved": ("name: jobs\naction: {type: static}\n", 1, "reserved"),
    "bad_name": ("name: Bad Name!\naction: {type: static}\n", 1, "name"),
    "unknown_type": ("name: x\naction:\n  type: teleport\n", 2, "action"),
    "bad_template": ("name: x\naction:\n  type: static\n  body:\n    a: \"{{ 1 + }}\"\n", 5,
                     "action.body.a"),
    "bad_jmespath": ("name: x\naction:\n  type: static\n  body:\n    a: {$jmespath: 'a[['}\n",
                     5, "JMESPath"),
    "bad_schema": ("name: x\ninput:\n  schema: {type: 12}\naction: {type: static}\n", 3,
                   "input.schema"),
    "unknown_database": ("name: x\naction:\n  type: sql\n  database: nope\n  query: SELECT 1\n",
                         4, "unknown database"),
    "missing_param": ("name: x\naction:\n  type: sql\n  database: app\n"
                      "  query: SELECT :a\n", 2, ":a"),
    "templated_sql": ("name: x\naction:\n  type: sql\n  database: app\n"
                      "  query: \"SELECT {{ query.x }}\"\n", 5, "templates"),
    "handler_import": ("name: x\naction:\n  type: python\n  handler: no_such_module_xyz:f\n", 4,
                       "cannot import"),
    "bad_url": ("name: x\naction:\n  type: http\n  url: ftp://example.com/\n", 4, "http"),
    "bad_duration": ("name: x\ntimeout: soon\naction: {type: static}\n", 2, "duration"),
    "step_without_name": ("name: x\naction:\n  type: pipeline\n  steps:\n"
                          "    - {type: static}\n", 4, "name"),
    "bad_condition": ("name: x\naction:\n  type: pipeline\n  steps:\n"
                      "    - name: a\n      when: 'steps.a >'\n      type: static\n", 6, "condition"),
    "not_a_mapping": ("- just\n- a list\n", 1, "mapping"),
    "signature_on_service": ("name: x\nauth:\n  signature: {scheme: hmac-sha256, "
                             "secret_env: S}\naction: {type: static}\n", 1, "callback"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_name_file_line_and_reason(tmp_path, case):
    text, line, needle = BROKEN[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(FileBroken) as caught:
        load_file(path, settings_for(tmp_path))
    problems = caught.value.problems
    assert problems[0].file == path
    assert any(needle.lower() in p.reason.lower() for p in problems), problems
    assert any(p.line == line for p in problems), [(p.line, p.reason) for p in problems]


def test_multi_document_file_and_duplicates(tmp_path):
    directory = tmp_path / "definitions"
    directory.mkdir()
    (directory / "a.yaml").write_text("name: one\naction: {type: static}\n---\n"
                                      "name: two\naction: {type: static}\n")
    (directory / "b.yaml").write_text("name: two\naction: {type: static}\n")
    registry = DefinitionRegistry(settings_for(tmp_path))
    report = registry.load()
    assert report.loaded == ["one", "two"]
    assert registry.get("two").source == directory / "a.yaml"
    assert len(report.problems) == 1 and "already defined" in report.problems[0].reason


async def test_broken_file_keeps_last_good_version_and_listeners_run(tmp_path):
    directory = tmp_path / "definitions"
    directory.mkdir()
    path = directory / "a.yaml"
    path.write_text("name: one\naction: {type: static, body: 1}\n")
    registry = DefinitionRegistry(settings_for(tmp_path))
    reports = []
    registry.on_reload(reports.append)
    await registry.reload()
    first = registry.get("one")
    path.write_text("name: one\naction: {type: static, body: [}\n")
    report = await registry.reload()
    assert report.problems and registry.get("one") is first
    path.write_text("name: one\naction: {type: static, body: 2}\n")
    report = await registry.reload()
    assert not report.problems and registry.get("one") is not first
    assert report.changed == ["one"]
    path.unlink()
    report = await registry.reload()
    assert registry.get("one") is None and report.removed == ["one"]
    assert [bool(r.added) for r in reports] == [True, False, False]


def test_committed_schema_matches_the_models():
    generated = json.loads(json.dumps(json_schema(), sort_keys=True))
    for path in (ROOT / "schemas/definition.schema.json",
                 ROOT / "src/servicegate/schemas/definition.schema.json"):
        assert json.loads(path.read_text()) == generated, f"run `servicegate schema -o {path}`"


def test_examples_pass_check():
    env = {"PATH": "/usr/bin:/bin", "SERVICEGATE_CONFIG": str(ROOT / "examples/servicegate.toml")}
    done = run_command([SERVICEGATE, "check", "examples/definitions"], cwd=ROOT, env=env,
                       timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "9 definition(s) OK" in done.stdout


def test_check_cli_reports_and_exits_nonzero(tmp_path):
    directory = tmp_path / "defs"
    directory.mkdir()
    (directory / "good.yaml").write_text("name: good\naction: {type: static}\n")
    (directory / "bad.yaml").write_text(textwrap.dedent("""\
        name: bad
        action:
          type: static
          body: "{{ oops( }}"
    """))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = run_command([SERVICEGATE, "check", str(directory)], cwd=tmp_path, env=env,
                       timeout=60)
    assert done.returncode == 1
    assert f"{directory / 'bad.yaml'}:4: action.body" in done.stderr
    assert "1 definition(s) OK, 1 error(s) in 1 file(s)" in done.stdout


def test_examples_validate_against_the_published_schema():
    import yaml
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads((ROOT / "schemas/definition.schema.json")
                                                .read_text()))
    documents = [doc for path in sorted((ROOT / "examples/definitions").glob("*.yaml"))
                 for doc in yaml.safe_load_all(path.read_text())]
    assert len(documents) == 9
    for document in documents:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
        assert not errors, (document["name"], errors)
    bad = {"name": "x", "timeout": "soon", "action": {"type": "static", "bogus": 1}}
    assert len(list(validator.iter_errors(bad))) >= 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300) | st.builds(
    lambda keys, values: "\n".join(f"{k}: {v}" for k, v in zip(keys, values, strict=False)),
    st.lists(st.sampled_from(["name", "action", "type", "methods", "expose", "timeout", "auth",
                              "input", "rate_limit", "  type", "  body", "- name", "steps"])),
    st.lists(st.sampled_from(["x", "static", "[GET]", "{type: static}", "{{ a", "5s", "[", "'",
                              "{$jmespath: 'a['}", "null", "-1", "ping"]))))
def test_loader_never_crashes_on_arbitrary_text(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    try:
        loaded = load_file(path, settings_for(tmp_path))
    except FileBroken as exc:
        assert exc.problems and all(p.file == path and p.reason for p in exc.problems)
    else:
        assert loaded and all(d.name for d in loaded)
