//! CIFAR-10 reader and installer (official binary and Python layouts), subsets and random labels.
