//! Classical (strain) multidimensional scaling of weight vectors.
