#pragma once
// Python keyword arguments → the library's options. Every keyword is a CLI flag with '_' for '-'
// (`conv_rank` is `--conv-rank`), with the CLI's default. Resize keywords fill the CLI's own
// ResizeFlags and go through the CLI's conversion (cli::to_resize_options), so the validation and its
// messages are the CLI's. None means "not given". One table entry per keyword (options.cpp).
#include <string>
#include <vector>

#include <pybind11/pybind11.h>

#include "lorakit/batch.hpp"
#include "lorakit/resize.hpp"

namespace lorakit::python {

namespace py = pybind11;

// The keyword names, in table order (the type stubs are checked against them).
std::vector<std::string> resize_keywords();
std::vector<std::string> batch_keywords();  // the resize keywords and batch's own

// Throws py::type_error for an unknown keyword, lorakit::Error(invalid_argument) for a bad value.
// `progress` is not an option: the caller takes it out first.
ResizeOptions resize_options(const py::dict& keywords);
batch::Options batch_options(const py::dict& keywords);

}  // namespace lorakit::python
