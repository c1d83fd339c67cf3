//! http.route templates: configured patterns, else an ID-segment heuristic (work in progress).
