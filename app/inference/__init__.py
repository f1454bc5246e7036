"""The face pipeline for requests: decoding in time, inference slots, the admission queue, micro-batching."""
