"""Names registry.toml reserves for first-party plugins: `list --available` shows them with
their status, and `new-plugin` and `doctor` warn a third-party author who takes one."""

import json
import os

from yw_core.scaffold import scaffold


def test_available_shows_planned_names_with_their_status(bare_site):
    bare_site.reserve("yw-plugin-reserved", "reserved", "unlearner")
    proc = bare_site.run_cli("list", "--available", "--interface", "unlearner")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:]}
    assert rows["reserved"][:4] == ["reserved", "unlearner", "yw-plugin-reserved", "planned"]
    proc = bare_site.run_cli("list", "--available", "--json", "--interface", "unlearner")
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["reserved"]["status"] == "planned"


def test_new_plugin_warns_on_a_reserved_name_and_still_creates_it(bare_site, tmp_path):
    bare_site.reserve("yw-plugin-reserved", "reserved", "unlearner")
    out = str(tmp_path / "plugin")
    proc = bare_site.run_cli("new-plugin", "reserved", "--interface", "unlearner", "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (
        "yw-core new-plugin: warning: the name 'reserved' is reserved for the first-party "
        "yw-plugin-reserved (unlearner in registry.toml); installed together, the two clash: "
        "choose another name\n"
    )
    assert (tmp_path / "plugin" / "pyproject.toml").is_file()
    free = bare_site.run_cli(
        "new-plugin", "free", "--interface", "unlearner", "--output", out + "2"
    )
    assert free.returncode == 0 and free.stderr == ""


def test_doctor_warns_on_a_third_party_method_with_a_reserved_name(fake_site, tmp_path):
    scaffold("energy", "ood_scorer", tmp_path / "energy")  # a valid class, so status ok
    fake_site.add("yw-energy", {"yw.ood_scorers": {"energy": "yw_plugin_energy:Energy"}})
    fake_site.add("yw-hooks", {"yw.hooks": {"energy": "os"}})  # hooks are not method names
    path = os.pathsep.join([str(fake_site.root), str(tmp_path / "energy" / "src")])
    proc = fake_site.run_cli("doctor", PYTHONPATH=path)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a warning, not a problem
    assert proc.stdout.splitlines()[-1] == "2 plugin entries ok, 0 with problems"
    assert proc.stderr == (
        "yw-core doctor: warning: ood_scorer/energy from yw-energy 1.0: the name 'energy' is "
        "reserved for the first-party yw-plugin-baselines (ood_scorer in registry.toml); "
        "installed together, the two clash: choose another name\n"
    )
