"""The README's Python blocks run as written, in order, in one namespace."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert 0.0 <= namespace["result"].test["ndcg@10"] <= 1.0
    assert (tmp_path / "runs" / "ace.pt").is_file()
    assert set(namespace["downstream"].best_params_) == {"acetransformer__lam",
                                                         "acetransformer__gamma"}
