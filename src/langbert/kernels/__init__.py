"""Speed-ups that change how a model computes, never what it computes or how it is saved: cheaper CPU
dropout, an encoder that skips padding, and the hardware question of whether bf16 runs natively."""
