"""A test run leaves no `.crew/suite/` in the working tree: the conformance kit removes the
scratch folders it makes (and `.crew/suite`, `.crew` once empty), keeping what others put there."""

import os

from crew.testing import ControllerSuite


def test_scratch_folders_are_removed_after_each_test(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite = ControllerSuite()
    folders = [suite.scratch_directory(), suite.scratch_directory()]
    for folder in folders:
        assert os.path.isdir(folder) and folder.startswith(str(tmp_path / ".crew" / "suite"))
        with open(os.path.join(folder, "marker"), "w") as handle:
            handle.write("written by a worker")
    suite.teardown_method()
    assert not (tmp_path / ".crew").exists()


def test_what_others_keep_under_dot_crew_stays(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".crew" / "scripts").mkdir(parents=True)
    suite = ControllerSuite()
    folder = suite.scratch_directory()
    suite.teardown_method()
    assert not os.path.exists(folder) and not (tmp_path / ".crew" / "suite").exists()
    assert (tmp_path / ".crew" / "scripts").is_dir()
