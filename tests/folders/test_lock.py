import subprocess
import sys

import pytest

from denoise.folders.lock import OutputBusy, output_lock


def test_a_second_holder_of_the_output_folder_is_refused(tmp_path):
    with output_lock(tmp_path):
        # another process (a lock held by this one would be shared with it by flock)
        code = f"from denoise.folders.lock import output_lock\nwith output_lock({str(tmp_path)!r}): pass"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "OutputBusy: another denoise run (pid " in r.stderr, r.stderr
        assert f"is writing to {tmp_path}; wait for it to finish or choose another output folder" in r.stderr
    with output_lock(tmp_path):  # released with its holder
        pass


def test_the_lock_is_refused_within_one_process_too(tmp_path):
    with output_lock(tmp_path):
        with pytest.raises(OutputBusy, match="another denoise run"):
            with output_lock(tmp_path):
                pass
