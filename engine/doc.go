// Package engine implements neural style transfer (Gatys et al., as taught in Stanford CS231n) on
// GoMLX: SqueezeNet 1.1 feature extraction, the content, style (Gram) and total-variation losses,
// their gradient with respect to the image, and the Adam loop that paints the content image in the
// style of an artwork, on one of two schedules: the reference's own, or a faster one with a gentler
// learning rate (see Schedule).
//
// The reference is ../shared/reference/reference.py; each part here carries the name of its
// counterpart there (extract, gram, content_loss, style_loss, tv_loss, transfer).
//
// The gradient is an explicit backward pass written with forward ops only (DotGeneral, Slice,
// Concatenate, Pad, ArgMax, ScatterSum), because GoMLX's automatic differentiation fails or crawls
// on the pure-Go backend for this network. Being plain graph code, the same formulation runs unchanged on
// every GoMLX backend; the backend is a setting (see NewBackend), never a code path. The one choice
// is how the 3x3 convolutions are built (see Convolutions): from matrix products over patches, or
// with the backend's convolution op, which makes a much smaller program for XLA to compile.
//
// Images are float32 tensors in CHW layout (no batch axis), normalised with ImageNet's mean and std.
package engine
