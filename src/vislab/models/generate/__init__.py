"""Generative models: generators and critics (discriminators). Today the fully connected GAN of the 2-D toy task;
autoencoders, VAEs, DCGAN and diffusion U-Nets belong here too."""
