"""Language stage: vocabulary, embedding transfer, continued pretraining. Outputs are ordinary checkpoints."""
