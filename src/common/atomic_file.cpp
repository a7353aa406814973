#include "lorakit/atomic_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "common/folder_of.hpp"
#include "lorakit/error.hpp"

namespace lorakit {
namespace {

using detail::folder_of;

std::string errno_text(int error) { return std::strerror(error); }

bool path_exists(const std::filesystem::path& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;  // a dangling symlink still occupies the name
}

void fsync_folder(const std::filesystem::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(ErrorCode::io_write, folder.string(), "", "cannot open folder to sync: " + errno_text(errno));
  }
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  // Some file systems cannot sync a folder; the rename itself has happened, so only real I/O errors count.
  if (result != 0 && error != EINVAL && error != ENOTSUP) {
    throw Error(ErrorCode::io_write, folder.string(), "", "cannot sync folder: " + errno_text(error));
  }
}

// Renames without ever replacing an existing target: renameat2(RENAME_NOREPLACE) where the file system
// supports it, else link() (which fails on an existing name) followed by unlink of the temp name.
void rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return;
  }
  int error = errno;
  if (error == EINVAL || error == ENOSYS || error == ENOTSUP) {
    if (::link(from.c_str(), to.c_str()) == 0) {
      ::unlink(from.c_str());
      return;
    }
    error = errno;
  }
  if (error == EEXIST) {
    throw Error(ErrorCode::output_exists, to.string(), "", "output exists (use --force to replace it)");
  }
  throw Error(ErrorCode::io_write, to.string(), "", "cannot rename temporary file: " + errno_text(error));
}

}  // namespace

void refuse_existing_output(const std::filesystem::path& target, bool overwrite) {
  if (!overwrite && path_exists(target)) {
    throw Error(ErrorCode::output_exists, target.string(), "", "output exists (use --force to replace it)");
  }
}

AtomicFile::AtomicFile(std::filesystem::path target, bool overwrite)
    : target_(std::move(target)), overwrite_(overwrite) {
  refuse_existing_output(target_, overwrite_);
  // O_EXCL never reuses someone else's file; a collision of the random part just draws again.
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    temp_ = random_temp_path(target_);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) {
      throw Error(ErrorCode::io_open, temp_.string(), "",
                  "cannot create temporary file: " + errno_text(errno));
    }
    if (fd_ >= 0 && !lock_temp()) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  if (fd_ < 0) {
    throw Error(ErrorCode::io_open, target_.string(), "", "cannot find a free temporary file name");
  }
}

// Between the creation of the temp file and its lock, a cleaner may have taken the file for a killed
// writer's and removed it; then this returns false and the caller draws another name.
bool AtomicFile::lock_temp() {
  lock_fd_ = ::open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat written {};
  struct stat locked {};
  const bool held = lock_fd_ >= 0 && ::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd_, &written) == 0 &&
                    ::fstat(lock_fd_, &locked) == 0 && written.st_ino == locked.st_ino &&
                    written.st_dev == locked.st_dev && written.st_nlink > 0;
  if (!held && lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
  return held;
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  if (!committed_) {
    ::unlink(temp_.c_str());
  }
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
  }
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  if (fd_ < 0) {
    throw Error(ErrorCode::internal, target_.string(), "", "write after commit");
  }
  const std::byte* next = bytes.data();
  std::size_t remaining = bytes.size();
  while (remaining > 0) {
    const ssize_t count = ::write(fd_, next, remaining);
    if (count < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw Error(ErrorCode::io_write, target_.string(), "", "write failed: " + errno_text(errno));
    }
    if (count == 0) {
      throw Error(ErrorCode::io_write, target_.string(), "", "write made no progress");
    }
    next += count;
    remaining -= static_cast<std::size_t>(count);
    written_ += static_cast<std::uint64_t>(count);
  }
}

void AtomicFile::write(std::string_view bytes) {
  write(std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
}

void AtomicFile::write_at(std::uint64_t offset, std::string_view bytes) {
  if (fd_ < 0 || offset > written_ || bytes.size() > written_ - offset) {
    throw Error(ErrorCode::internal, target_.string(), "", "write_at outside the written range");
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t count =
        ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (count < 0 && errno == EINTR) {
      continue;
    }
    if (count < 0) {
      throw Error(ErrorCode::io_write, target_.string(), "", "write failed: " + errno_text(errno));
    }
    if (count == 0) {
      throw Error(ErrorCode::io_write, target_.string(), "", "write made no progress");
    }
    done += static_cast<std::size_t>(count);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) {
    throw Error(ErrorCode::internal, target_.string(), "", "commit called twice");
  }
  if (::fsync(fd_) != 0) {
    throw Error(ErrorCode::io_write, target_.string(), "", "fsync failed: " + errno_text(errno));
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    throw Error(ErrorCode::io_write, target_.string(), "", "close failed: " + errno_text(errno));
  }
  if (overwrite_) {
    if (::rename(temp_.c_str(), target_.c_str()) != 0) {
      throw Error(ErrorCode::io_write, target_.string(), "",
                  "cannot rename temporary file: " + errno_text(errno));
    }
  } else {
    rename_no_replace(temp_, target_);
  }
  committed_ = true;
  ::close(lock_fd_);  // the temp name is gone: nothing left to guard
  lock_fd_ = -1;
  fsync_folder(folder_of(target_));
}

bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  struct stat info_a {};
  struct stat info_b {};
  if (::stat(a.c_str(), &info_a) != 0 || ::stat(b.c_str(), &info_b) != 0) {
    return false;
  }
  return info_a.st_dev == info_b.st_dev && info_a.st_ino == info_b.st_ino;
}

bool same_path(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code ignored;
  return same_file(a, b) ||
         std::filesystem::weakly_canonical(a, ignored) == std::filesystem::weakly_canonical(b, ignored);
}

}  // namespace lorakit
