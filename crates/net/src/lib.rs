//! The paper's deep convolutional network (DCNN) on libtorch.
