"""Image-to-image translation (#17): pix2pix for paired folders, CycleGAN for unpaired ones."""
