// Golden CLI cases (tests/golden/*.case): each runs the real `lorakit` binary in a fresh folder and
// compares its exit code and output with the case file, so messages and exit codes are pinned exactly.
//
// Case file format (one directive per line; '#' starts a comment line):
//   gen ARGS...          run lorakit-gen ARGS (fixtures)
//   file NAME TEXT...    write TEXT to NAME
//   truncate NAME SIZE   cut NAME to SIZE bytes
//   run ARGS...          the lorakit command line (arguments split on spaces)
//   exit N               expected exit code
//   stdout-has TEXT      a line of stdout equals TEXT            (any number)
//   stderr TEXT          stderr equals these lines, in order      (any number; none means empty)
//   stderr-has TEXT      a line of stderr starts with TEXT        (any number)
//   unchanged NAME       NAME's bytes are the same after the run
//   exists NAME / absent NAME
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct Case {
  std::vector<std::string> setup;
  std::string run;
  int exit_code = 0;
  std::vector<std::string> stdout_has, stderr_lines, stderr_has, unchanged, exists, absent;
  bool stderr_exact = false;
};

std::string after(const std::string& line, std::size_t n) { return line.size() > n ? line.substr(n) : ""; }

Case parse_case(const fs::path& path) {
  Case c;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::string word = line.substr(0, line.find(' '));
    const std::string rest = after(line, word.size() + 1);
    if (word == "gen" || word == "file" || word == "truncate") c.setup.push_back(line);
    else if (word == "run") c.run = rest;
    else if (word == "exit") c.exit_code = std::stoi(rest);
    else if (word == "stdout-has") c.stdout_has.push_back(rest);
    else if (word == "stderr") { c.stderr_lines.push_back(rest); c.stderr_exact = true; }
    else if (word == "stderr-has") c.stderr_has.push_back(rest);
    else if (word == "unchanged") c.unchanged.push_back(rest);
    else if (word == "exists") c.exists.push_back(rest);
    else if (word == "absent") c.absent.push_back(rest);
    else ADD_FAILURE() << path << ": unknown directive " << word;
  }
  return c;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream s(text);
  std::string line;
  while (std::getline(s, line)) lines.push_back(line);
  return lines;
}

int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void prepare(const std::string& line, const fs::path& dir) {
  std::istringstream words(line);
  std::string verb, name;
  words >> verb;
  if (verb == "gen") {
    ASSERT_EQ(shell("cd '" + dir.string() + "' && " LORAKIT_GEN " " + after(line, 4) + " >/dev/null"), 0) << line;
  } else if (verb == "file") {
    words >> name;
    std::string text;
    std::getline(words, text);
    std::ofstream(dir / name) << after(text, 1);
  } else if (verb == "truncate") {
    std::uintmax_t size = 0;
    words >> name >> size;
    fs::resize_file(dir / name, size);
  }
}

class GoldenCli : public ::testing::TestWithParam<fs::path> {};

TEST_P(GoldenCli, Matches) {
  const fs::path case_path = GetParam();
  const Case c = parse_case(case_path);
  const fs::path dir = fs::temp_directory_path() / ("lorakit_golden_" + case_path.stem().string() + "_" +
                                                    std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const std::string& line : c.setup) prepare(line, dir);
  std::vector<std::string> before;
  for (const std::string& name : c.unchanged) before.push_back(read_file(dir / name));

  const int code = shell("cd '" + dir.string() + "' && " LORAKIT_CLI " " + c.run +
                         " >stdout.txt 2>stderr.txt </dev/null");
  const std::vector<std::string> out = lines_of(read_file(dir / "stdout.txt"));
  const std::vector<std::string> err = lines_of(read_file(dir / "stderr.txt"));
  EXPECT_EQ(code, c.exit_code) << "stderr:\n" << read_file(dir / "stderr.txt");
  for (const std::string& want : c.stdout_has) {
    EXPECT_NE(std::find(out.begin(), out.end(), want), out.end()) << "stdout lacks: " << want << "\nstdout:\n"
                                                                   << read_file(dir / "stdout.txt");
  }
  if (c.stderr_exact) {
    EXPECT_EQ(err, c.stderr_lines);
  }
  for (const std::string& want : c.stderr_has) {
    EXPECT_TRUE(std::any_of(err.begin(), err.end(), [&](const std::string& l) { return l.rfind(want, 0) == 0; }))
        << "stderr lacks: " << want << "\nstderr:\n" << read_file(dir / "stderr.txt");
  }
  for (std::size_t i = 0; i < c.unchanged.size(); ++i) {
    EXPECT_EQ(read_file(dir / c.unchanged[i]), before[i]) << c.unchanged[i] << " changed";
  }
  for (const std::string& name : c.exists) EXPECT_TRUE(fs::exists(dir / name)) << name;
  for (const std::string& name : c.absent) EXPECT_FALSE(fs::exists(dir / name)) << name;
  fs::remove_all(dir);
}

std::vector<fs::path> case_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(fs::path(LORAKIT_SOURCE_DIR) / "tests" / "golden")) {
    if (entry.path().extension() == ".case") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenCli, ::testing::ValuesIn(case_files()),
                         [](const auto& param_info) {
                           std::string name = param_info.param.stem().string();
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
