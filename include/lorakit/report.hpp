#pragma once
// Human and machine-readable reports of a resize.
#include <cstdint>
#include <iosfwd>
#include <string>

#include "lorakit/resize.hpp"

namespace lorakit {

// Fills average_fro, std_fro, energy_weighted_fro and the outcome counts from report.modules.
void summarize(ResizeReport& report);

// Summary lines; with verbose, one line per module first (as the reference prints them).
void print_report(std::ostream& out, const ResizeReport& report, bool verbose);
std::string report_json(const ResizeReport& report);  // pretty JSON, NaN written as null

}  // namespace lorakit
