"""`prepare --engine ray`: the parts of the clean, attributes and shards stages done on Ray Data.

The same part functions as the local engine (clip_arena.prepare.stages) run in Ray's workers: cleaning
and shard samples (image decode, resize, JPEG) in CPU tasks, zero-shot attributes in actors that load
the model once. The driver keeps what must stay in one place: saving each part as it finishes (the
unit of resume) and writing the shards in the catalog's order, so both engines write the same files."""

from __future__ import annotations

import pickle
from typing import Callable, Iterator

from clip_arena.core.errors import UserError
from clip_arena.engines.ray_runtime import RayOptions, _user_error, actor_class, ray_session


def _bytes_worker(make: Callable) -> Callable[[], Callable[[bytes], bytes]]:
    def build():
        work = make()
        return lambda payload: pickle.dumps(work(pickle.loads(payload)), protocol=5)

    return build


class RayEngine:
    name = "ray"

    def __init__(self, options: RayOptions):
        self.options = options
        self._session = None

    def _ray(self):
        if self._session is None:  # started on the first part left to do: a resumed run may need none
            self._session = ray_session(self.options)
            self._ray_module = self._session.__enter__()
        return self._ray_module

    def close(self) -> None:
        if self._session is not None:
            self._session.__exit__(None, None, None)
            self._session = None

    def map_parts(self, parts: list[tuple[int, list[dict]]], fn: Callable | None = None,
                  make: Callable | None = None) -> Iterator[tuple[int, list]]:
        """(part number, its output) for each part, in the order they finish."""
        if not parts:
            return
        ray = self._ray()
        import pyarrow as pa

        refs = [ray.put(pa.table({"part": [n], "payload": [pickle.dumps(records, protocol=5)]}))
                for n, records in parts]
        dataset = ray.data.from_arrow_refs(refs)
        if make is None:
            def task(batch):
                return {"part": batch["part"],
                        "payload": [pickle.dumps(fn(pickle.loads(p)), protocol=5) for p in batch["payload"]]}

            dataset = dataset.map_batches(task, batch_size=1, batch_format="numpy", num_cpus=1)
        else:
            dataset = dataset.map_batches(actor_class("PrepareParts", _bytes_worker(make)), batch_size=1,
                                          batch_format="numpy",
                                          compute=ray.data.ActorPoolStrategy(size=self.options.actors),
                                          num_gpus=self.options.gpus_per_actor or None)
        try:
            for row in dataset.iter_rows():
                yield int(row["part"]), pickle.loads(bytes(row["payload"]))
        except UserError:
            raise
        except Exception as err:  # a part failed inside Ray: say what, in one sentence
            raise _user_error(err) from err
