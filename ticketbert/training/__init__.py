"""Training: the loop (``loop``), evaluation (``evaluate``), metrics (``metrics``), checkpoints
(``checkpoint``) and device handling (``device``). Import from the submodules."""
