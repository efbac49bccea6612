//! nuScenes detection metrics and BEV map-segmentation mIoU (issue #5).
