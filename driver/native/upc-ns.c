/*
 * upc-ns: the few steps of a uPC session that need a single-threaded process (setns into a user
 * namespace, unshare of a PID namespace followed by fork). Everything else — every bind, overlay,
 * tmpfs, remount and unmount — is done by driver/src/linux/privileged.ts through koffi.
 *
 *   upc-ns userns BASE COUNT
 *       Makes a user namespace whose ids 0..COUNT-1 are BASE..BASE+COUNT-1 outside, held by a child
 *       that lives until this program's stdin closes. Prints the child's pid.
 *   upc-ns start USERNS_PATH HOSTNAME
 *       Starts the session's init: pid 1 of a new PID namespace that mounts its own /proc, joins the
 *       user namespace, then unshares mount (locking every mount it inherits), IPC and UTS
 *       namespaces. Prints the init's pid, then "ready". The init reaps orphans; on SIGTERM it asks
 *       every session process to end and exits after a grace period, which kills what is left.
 *   upc-ns enter INIT_PID UID GID DIR -- PROGRAM [ARGS...]
 *       Runs PROGRAM inside the session of INIT_PID as UID:GID (ids inside the session), in DIR, and
 *       exits with its status (128 + signal if a signal ended it).
 *
 * Only root runs this (the agent); it is not installed setuid. Exit 120-125 mean the helper itself
 * failed, with a line on stderr that says which step.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL 121
#define GRACE_SECONDS 3

static void die(const char *step) {
  fprintf(stderr, "upc-ns: %s: %s\n", step, strerror(errno));
  exit(FAIL);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  size_t length = strlen(text);
  if (write(fd, text, length) != (ssize_t)length) die(path);
  close(fd);
}

static long number(const char *text, const char *what) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) {
    fprintf(stderr, "upc-ns: %s must be a whole number, not \"%s\"\n", what, text);
    exit(2);
  }
  return value;
}

static int userns(long base, long count) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) die("pipe");
  pid_t holder = fork();
  if (holder < 0) die("fork");
  if (holder == 0) {
    close(ready[0]);
    if (unshare(CLONE_NEWUSER) < 0) die("unshare user namespace");
    if (write(ready[1], "u", 1) != 1) die("report");
    close(ready[1]);
    char byte;
    while (read(STDIN_FILENO, &byte, 1) > 0) {
    }
    _exit(0);
  }
  close(ready[1]);
  char byte;
  if (read(ready[0], &byte, 1) != 1) {
    errno = ECHILD;
    die("user namespace holder");
  }
  char path[64], map[96];
  snprintf(map, sizeof map, "0 %ld %ld\n", base, count);
  snprintf(path, sizeof path, "/proc/%d/uid_map", holder);
  write_file(path, map);
  snprintf(path, sizeof path, "/proc/%d/gid_map", holder);
  write_file(path, map);
  printf("%d\n", holder);
  fflush(stdout);
  int status;
  waitpid(holder, &status, 0);
  return 0;
}

static volatile sig_atomic_t ending = 0;
static void on_term(int signal) {
  (void)signal;
  ending = 1;
}

static void on_child(int signal) { (void)signal; }

static int init_loop(void) {
  struct sigaction action = {0};
  action.sa_handler = on_term;
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);
  action.sa_handler = on_child; /* so that pause() wakes when an orphan comes to us */
  sigaction(SIGCHLD, &action, NULL);
  for (;;) {
    if (ending) {
      kill(-1, SIGTERM);
      for (int i = 0; i < GRACE_SECONDS * 10; i++) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        if (kill(-1, 0) < 0 && errno == ESRCH) break; /* nothing left but us */
        usleep(100000);
      }
      return 0; /* pid 1 exits: the kernel kills what is left */
    }
    if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD) pause();
  }
}

static int start(const char *userns_path, const char *hostname) {
  int user = open(userns_path, O_RDONLY | O_CLOEXEC);
  if (user < 0) die(userns_path);
  if (unshare(CLONE_NEWPID) < 0) die("unshare pid namespace");
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) die("pipe");
  pid_t init = fork();
  if (init < 0) die("fork");
  if (init == 0) {
    close(ready[0]);
    /* Still real root: a mount namespace of our own, with a /proc of the new PID namespace. */
    if (unshare(CLONE_NEWNS) < 0) die("unshare mount namespace");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make mounts private");
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) die("mount /proc");
    /* Into the session's user namespace; from here on root is root of the session only. */
    if (setns(user, CLONE_NEWUSER) < 0) die("join user namespace");
    close(user);
    if (setgroups(0, NULL) < 0) die("setgroups");
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("become the session's root");
    /* A mount namespace owned by the session: every inherited mount is locked in place. */
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0) die("unshare session namespaces");
    if (sethostname(hostname, strlen(hostname)) < 0) die("sethostname");
    if (chdir("/") < 0) die("chdir /");
    if (write(ready[1], "r", 1) != 1) die("report");
    close(ready[1]);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, STDIN_FILENO);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      if (null > STDERR_FILENO) close(null);
    }
    setsid();
    _exit(init_loop());
  }
  close(ready[1]);
  close(user);
  char byte;
  if (read(ready[0], &byte, 1) != 1) {
    int status;
    waitpid(init, &status, 0);
    fprintf(stderr, "upc-ns: the session's init did not start\n");
    return FAIL;
  }
  printf("%d\nready\n", init);
  fflush(stdout);
  return 0;
}

static int enter(long init, long uid, long gid, const char *dir, char **argv) {
  static const struct {
    const char *name;
    int type;
  } order[] = {
      /* The PID namespace belongs to the host's user namespace: joined while still root. */
      {"pid", CLONE_NEWPID},
      {"user", CLONE_NEWUSER},
      {"mnt", CLONE_NEWNS},
      {"ipc", CLONE_NEWIPC},
      {"uts", CLONE_NEWUTS},
  };
  int fds[5];
  for (int i = 0; i < 5; i++) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/ns/%s", init, order[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) {
      fprintf(stderr, "upc-ns: the session (pid %ld) is not running: %s\n", init, strerror(errno));
      return 122;
    }
  }
  for (int i = 0; i < 5; i++) {
    if (setns(fds[i], order[i].type) < 0) die(order[i].name);
    close(fds[i]);
  }
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    if (setgroups(0, NULL) < 0) die("setgroups");
    if (setresgid(gid, gid, gid) < 0) die("setgid");
    if (setresuid(uid, uid, uid) < 0) die("setuid");
    if (chdir(dir) < 0 && chdir("/") < 0) die("chdir");
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    execvp(argv[0], argv);
    fprintf(stderr, "upc-ns: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  /* Ctrl-C reaches the program through the terminal's process group; we wait for it either way. */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  int status;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) die("wait");
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "userns") == 0 && argc == 4) {
    return userns(number(argv[2], "BASE"), number(argv[3], "COUNT"));
  }
  if (argc == 4 && strcmp(argv[1], "start") == 0) return start(argv[2], argv[3]);
  if (argc >= 8 && strcmp(argv[1], "enter") == 0 && strcmp(argv[6], "--") == 0) {
    return enter(number(argv[2], "INIT_PID"), number(argv[3], "UID"), number(argv[4], "GID"), argv[5],
                 argv + 7);
  }
  fprintf(stderr,
          "usage: upc-ns userns BASE COUNT\n"
          "       upc-ns start USERNS_PATH HOSTNAME\n"
          "       upc-ns enter INIT_PID UID GID DIR -- PROGRAM [ARGS...]\n");
  return 2;
}
