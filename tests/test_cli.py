"""The command line, in process through main(argv) and once through `python -m`."""

from __future__ import annotations

import configparser
import io
import json
import os
import subprocess
import sys
from typing import Iterator, List

import pytest

import leonardo_client.__main__ as cli
from leonardo_client.testing import FakeLeonardo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def quick_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "OFFLINE_COMPLETION_DELAY", 0.0)


@pytest.fixture
def fake_in_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLeonardo]:
    """A fake the CLI reaches online, through the environment, as it would the real API."""
    with FakeLeonardo() as server:
        monkeypatch.setenv("LEONARDO_API_KEY", server.api_key)
        monkeypatch.setenv("LEONARDO_BASE_URL", server.base_url)
        yield server


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_generate_offline_saves_images_and_prints_paths(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.setattr(cli, "OFFLINE_COMPLETION_DELAY", 0.1)  # PENDING at the first check
    out = os.path.join(str(tmp_path), "images")
    assert cli.main(["--offline", "generate", "a lighthouse at dusk", "--num-images", "2", "--out", out]) == 0
    captured = capsys.readouterr()
    paths = captured.out.split()
    assert len(paths) == 2 and all(p.startswith(out) and p.endswith(".png") for p in paths)
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in paths)
    progress = captured.err.splitlines()
    assert "PENDING, 0.0s elapsed" in progress[0] and "COMPLETE" in progress[-1]
    assert "\r" not in captured.err  # not a terminal: plain lines


def test_offline_flag_also_after_the_command(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert cli.main(["generate", "x", "--offline", "--out", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.split()) == 1


def test_progress_redraws_one_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr(cli, "OFFLINE_COMPLETION_DELAY", 0.1)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["--offline", "generate", "x", "--out", str(tmp_path)]) == 0
    text = terminal.getvalue()
    assert text.startswith("\rgeneration ") and text.count("\r") >= 2
    assert text.endswith("\n") and text.count("\n") == 1


def test_generate_online_sends_the_options(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    args = ["generate", "a fox", "--model-id", "model-7", "--width", "512", "--height", "640", "--timeout", "20"]
    assert cli.main(args + ["--out", str(tmp_path)]) == 0
    [create] = [r for r in fake_in_env.requests if r.method == "POST"]
    assert create.json == {"prompt": "a fox", "modelId": "model-7", "num_images": 1, "width": 512, "height": 640}
    assert len(os.listdir(str(tmp_path))) == 1


def test_get_list_delete_online(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert cli.main(["generate", "x", "--out", str(tmp_path)]) == 0
    [generation_id] = fake_in_env.generation_ids()
    capsys.readouterr()

    assert cli.main(["get", generation_id]) == 0
    assert json.loads(capsys.readouterr().out)["generations_by_pk"]["id"] == generation_id

    assert cli.main(["list", fake_in_env.user_id, "--limit", "5", "--offset", "0"]) == 0
    assert [g["id"] for g in json.loads(capsys.readouterr().out)["generations"]] == [generation_id]
    assert fake_in_env.requests[-1].query == {"limit": "5", "offset": "0"}

    assert cli.main(["delete", generation_id]) == 0
    assert json.loads(capsys.readouterr().out) == {"delete_generations_by_pk": {"id": generation_id}}
    assert fake_in_env.generation_ids() == []


def test_offline_list_knows_me(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--offline", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == {"generations": []}
    assert cli.main(["--offline", "list", "me"]) == 0


@pytest.mark.parametrize("argv", [["--offline", "get", "no-such-id"], ["--offline", "delete", "no-such-id"]])
def test_unknown_id_is_an_api_error(capsys: pytest.CaptureFixture[str], argv: List[str]) -> None:
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "leonardo-client: error: no generation with id 'no-such-id'" + (
        " (nothing deleted)\n" if argv[1] == "delete" else "\n"
    )


def test_api_errors_exit_1_with_one_line_and_no_key(fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEONARDO_API_KEY", "wrong-key-for-test")
    assert cli.main(["get", "abc"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("leonardo-client: error: HTTP 401") and err.count("\n") == 1
    assert "wrong-key-for-test" not in err and "Traceback" not in err


def test_server_refusing_the_request_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert cli.main(["--offline", "generate", "x", "--width", "33", "--out", str(tmp_path)]) == 1
    assert "HTTP 400" in capsys.readouterr().err


def test_failed_generation_exits_1(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    fake_in_env.fail_new_generations = True
    assert cli.main(["generate", "x", "--out", str(tmp_path)]) == 1
    assert "FAILED" in capsys.readouterr().err
    assert os.listdir(str(tmp_path)) == []


def test_wait_timeout_exits_1(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    fake_in_env.completion_delay = 30
    assert cli.main(["generate", "x", "--timeout", "0.3", "--out", str(tmp_path)]) == 1
    assert "still PENDING" in capsys.readouterr().err


def test_no_api_key_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", "abc"]) == 1
    assert "LEONARDO_API_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["generate"],
        ["generate", "x", "--num-images", "0"],
        ["generate", "x", "--width", "wide"],
        ["generate", "x", "--timeout", "-1"],
        ["list"],
        ["list", "u", "--limit", "-1"],
        ["frobnicate"],
        ["--offline", "get", ".."],  # refused by the client before anything is sent
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: List[str]) -> None:
    assert cli.main(argv) == 2
    assert "error:" in capsys.readouterr().err


def test_help_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for needed in ("LEONARDO_API_KEY", "--offline", "examples:", "generate", "get", "list", "delete", "spends credits"):
        assert needed in text
    assert cli.main(["generate", "--help"]) == 0
    assert "--num-images" in capsys.readouterr().out


def test_console_script_points_at_main() -> None:
    config = configparser.ConfigParser()
    config.read(os.path.join(REPO, "setup.cfg"))
    scripts = config["options.entry_points"]["console_scripts"]
    assert "leonardo-client = leonardo_client.__main__:main" in scripts


def test_python_dash_m_usage_error_exits_2() -> None:
    # `python -m leonardo_client --offline generate ...` itself runs in test_readme.py (README's command).
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env["PYTHONPATH"] = REPO
    bad = subprocess.run(
        [sys.executable, "-m", "leonardo_client", "generate"], capture_output=True, text=True, timeout=60, env=env
    )
    assert bad.returncode == 2 and "usage:" in bad.stderr
