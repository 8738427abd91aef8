"""Text-to-image diffusion with diffusers: text encoders, training, sampling."""
