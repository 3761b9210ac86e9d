"""spark-submit --master spark://... --py-files setlist.whl tests/cluster_probe.py OUT.json

Runs on the executors: where ``setlist`` was imported from, the worker's working folder, and
every loaded module or sys.path entry under the source tree (there must be none).
"""
import json
import sys

from pyspark.sql import SparkSession


def probe(_):
    import os

    import setlist
    import setlist.config  # noqa: F401  (a module with dependencies, imported like the jobs do)

    source = os.environ["SETLIST_SOURCE_TREE"]
    from_source = sorted(name for name, module in list(sys.modules.items())
                         if (getattr(module, "__file__", None) or "").startswith(source))
    yield {"setlist_file": setlist.__file__, "cwd": os.getcwd(), "executable": sys.executable,
           "modules_from_source": from_source,
           "path_from_source": [p for p in sys.path if p.startswith(source)]}


if __name__ == "__main__":
    spark = SparkSession.builder.getOrCreate()
    found = spark.sparkContext.parallelize(range(4), 4).mapPartitions(probe).collect()
    with open(sys.argv[1], "w") as out:
        json.dump(found, out)
    spark.stop()
