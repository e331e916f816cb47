"""Training: configs and stages (config_lib), mesh and sharding rules (sharding), the train state
and optimizer (state), pure steps (step), checkpoints, the loop (train), evaluation and grids."""
