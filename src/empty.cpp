// TEMPORARY: lets CMake configure while areas are written in parallel; removed once all exist.
