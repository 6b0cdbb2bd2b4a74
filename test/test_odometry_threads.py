"""The tracking programs run OpenCV and BLAS on one thread (idle pool threads busy-wait and
doubled the tracker's CPU beside the depth node); checked in a fresh interpreter, since the
setting is process-wide."""
import subprocess
import sys

CHECK = """
import cv2, numpy
from threadpoolctl import threadpool_info
from depth_unet_ros.odometry.threads import use_one_math_thread
use_one_math_thread()
blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
print(cv2.getNumThreads(), blas)
"""


def test_one_opencv_and_one_blas_thread_after_the_call():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    cv_threads, blas = out.stdout.split(maxsplit=1)
    assert int(cv_threads) == 1
    assert eval(blas) and set(eval(blas)) == {1}, out.stdout  # numpy's BLAS found and limited
