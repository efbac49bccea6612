//! AlterMOMA and the baseline pruning methods (issue #6).
