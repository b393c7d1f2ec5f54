// Child processes for the lab: `ip` to build namespaces and veths, `ping` to
// measure. fork/exec with an argument vector (no shell, nothing to quote),
// optionally inside a network namespace entered by the child alone, so the
// lab process itself stays where it is.
#pragma once

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace weft::lab {

struct ProcessResult {
  int status = 0;     // the exit code; 128 + signal when killed
  std::string output; // stdout and stderr, interleaved
};

// A started child whose output is collected by finish().
class Process {
public:
  // Runs argv[0] (looked up in PATH) in /run/netns/<netns> when netns is set.
  Process(const std::vector<std::string>& argv, const std::string& netns = "")
      : command_(describe(argv, netns)) {
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::string netns_path = netns.empty() ? "" : "/run/netns/" + netns;

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
      throw std::runtime_error("lab: pipe for `" + command_ + "`: " + std::strerror(errno));
    pid_ = ::fork();
    if (pid_ < 0) {
      int err = errno;
      ::close(out[0]);
      ::close(out[1]);
      throw std::runtime_error("lab: fork for `" + command_ + "`: " + std::strerror(err));
    }
    if (pid_ == 0)
      exec_child(args.data(), netns_path, out[1]); // never returns
    ::close(out[1]);
    out_ = out[0];
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process(Process&& other) noexcept
      : command_(std::move(other.command_)), pid_(other.pid_), out_(other.out_) {
    other.pid_ = -1;
    other.out_ = -1;
  }
  Process& operator=(Process&&) = delete;
  ~Process() {
    if (pid_ > 0)
      finish();
  }

  const std::string& command() const { return command_; }

  // Reads all output and waits for the child.
  ProcessResult finish() {
    ProcessResult result;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(out_, buf, sizeof(buf));
      if (n > 0)
        result.output.append(buf, static_cast<std::size_t>(n));
      else if (n == 0 || errno != EINTR)
        break;
    }
    ::close(out_);
    out_ = -1;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
  }

private:
  static std::string describe(const std::vector<std::string>& argv, const std::string& netns) {
    std::string text = netns.empty() ? "" : "[netns " + netns + "] ";
    for (std::size_t i = 0; i < argv.size(); ++i)
      text += (i ? " " : "") + argv[i];
    return text;
  }

  [[noreturn]] static void exec_child(char** args, const std::string& netns_path, int out) {
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0)
      ::dup2(null, STDIN_FILENO);
    if (!netns_path.empty()) {
      int ns = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
        const char* why = std::strerror(errno);
        (void)!::write(STDERR_FILENO, "cannot enter ", 13);
        (void)!::write(STDERR_FILENO, netns_path.c_str(), netns_path.size());
        (void)!::write(STDERR_FILENO, ": ", 2);
        (void)!::write(STDERR_FILENO, why, std::strlen(why));
        ::_exit(126);
      }
    }
    ::execvp(args[0], args);
    const char* why = std::strerror(errno);
    (void)!::write(STDERR_FILENO, "exec failed: ", 13);
    (void)!::write(STDERR_FILENO, why, std::strlen(why));
    ::_exit(127);
  }

  std::string command_;
  pid_t pid_ = -1;
  int out_ = -1;
};

inline ProcessResult run(const std::vector<std::string>& argv, const std::string& netns = "") {
  return Process(argv, netns).finish();
}

// Runs and throws, with the command and what it printed, unless it exits 0.
inline std::string run_checked(const std::vector<std::string>& argv,
                               const std::string& netns = "") {
  Process process(argv, netns);
  std::string command = process.command();
  auto result = process.finish();
  if (result.status != 0) {
    std::string output = result.output;
    while (!output.empty() && (output.back() == '\n' || output.back() == ' '))
      output.pop_back();
    throw std::runtime_error("lab: `" + command + "` failed (exit " +
                             std::to_string(result.status) + ")" +
                             (output.empty() ? "" : ": " + output));
  }
  return result.output;
}

} // namespace weft::lab
