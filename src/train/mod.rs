//! Training: single-modal pre-training, fusion training, fine-tuning loops (issue #4).
