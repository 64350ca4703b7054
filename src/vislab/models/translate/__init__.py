"""Image-to-image models (``vislab translate``): images in, images out, in [-1, 1].

* :mod:`~vislab.models.translate.pix2pix` -- ``pix2pix_unet``, the U-Net generator of pix2pix (Isola et al., 2017; also
  colorization, 1 -> 2 channels), and ``patchgan``, its 70x70 PatchGAN discriminator (raw logits per patch).
* :mod:`~vislab.models.translate.cyclegan` -- ``resnet_gen``, CycleGAN's ResNet generator (Zhu et al., 2017; after
  Johnson et al., 2016).
* :mod:`~vislab.models.translate.sr` -- super-resolution, ``(B, C, h, w) -> (B, C, h s, w s)`` with linear outputs:
  ``srcnn`` (Dong et al., 2014), ``srresnet`` (SRGAN's generator, Ledig et al., 2017), ``edsr`` (EDSR-baseline, Lim et
  al., 2017).
* :mod:`~vislab.models.translate.denoise` -- ``dncnn`` (Zhang et al., 2017): residual denoiser.
* :mod:`~vislab.models.translate.style` -- ``transformer_net`` (Johnson et al., 2016 with instance norm and
  upsample-conv): fast feed-forward style transfer, one or many styles (conditional instance norm, mixable).
* :mod:`~vislab.models.translate.tiling` -- ``tiled``: run any of them on overlapping tiles of a large image, seamlessly.
"""
