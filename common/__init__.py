"""Shared pieces of the 小土堆 PyTorch course companion, one job per module.

- ``paths``: where the repository, datasets, logs and checkpoints live
- ``cli``: the flags every script shares, and the ``error: ...`` wrapper
- ``device``: ``--device auto/cpu/cuda/mps`` to a ``torch.device``
- ``model``: ``GST``, the course's CIFAR-10 network, and the class names
- ``writer``: one TensorBoard run per invocation under ``logs/<script>/<run-id>/``
- ``runs``: one run id for a run's log and checkpoint folders; the newest run's last checkpoint
- ``data``: CIFAR-10 (real or fake), the embedded image sample, the in-memory loader
- ``download``: one file from a list of sources: resumable, with timeouts, md5-checked
- ``step``: the training step warmed up before the first epoch, or recorded as a CUDA graph
- ``checkpoint``: atomic save and safe (``weights_only``) load
- ``disk``: output folders tried before the work, free space before a big file, a failed
  write in one line
- ``figures``: the pictures of what a classifier learned (confusion matrix, captioned
  predictions, top-k) for TensorBoard's Images tab
- ``distributed``: one of torchrun's processes: who it is, its process group, DDP
"""
