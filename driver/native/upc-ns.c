/*
 * upc-ns: the few steps of a uPC session that need a single-threaded process (setns into a user
 * namespace, unshare of a PID namespace followed by fork), and the relay between a session's
 * program and whoever started it. Everything else — every bind, overlay, tmpfs, remount and
 * unmount — is done by driver/src/linux/privileged.ts through koffi.
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
 *       Runs PROGRAM inside the session of INIT_PID as UID:GID (ids inside the session), in DIR, in
 *       a session (setsid) and on a pseudo-terminal or pipes of its own, which this process relays
 *       to its own standard descriptors from outside the session's namespaces. Exits with the
 *       program's status (128 + signal if a signal ended it) once the program has ended, whatever
 *       it left running. SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed to the program's process
 *       group; 2 s after a SIGTERM the group is killed.
 *
 * Only root runs this (the agent); it is not installed setuid. Exit 120-125 mean the helper itself
 * failed, with a line on stderr that says which step.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define FAIL 121
#define GRACE_SECONDS 3
/* After a SIGTERM, the program's process group has this long before it is killed. */
#define TERM_GRACE_MS 2000
/* Output of the program still on its way once it ended is copied for at most this long. */
#define DRAIN_MS 1000

/* Where failures are reported: stderr, or (while joining a session) a pipe to the relay. */
static int error_fd = STDERR_FILENO;

static void die(const char *step) {
  dprintf(error_fd, "upc-ns: %s: %s\n", step, strerror(errno));
  _exit(FAIL);
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
    close_range(3, ~0U, 0); /* nothing of the builder's stays with the session */
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

/* ---- enter: a program in the session, on a terminal or pipes of its own, relayed by us ---- */

/*
 * The session's program never gets a descriptor of ours: not the caller's terminal (through which
 * TIOCSTI would type commands into the shell that ran upc, bubblewrap's CVE-2017-5226), not its
 * pipes, not anything else we hold. It gets a pseudo-terminal of its own when our standard input
 * is a terminal, else three pipes; this process, which never joins the session's namespaces,
 * copies between them and ours until the program ends, then stops: whatever the program left
 * running holds only its own terminal or pipes, which then hang up.
 */

static int signal_pipe[2] = {-1, -1};

static void on_relay_signal(int number) {
  unsigned char byte = (unsigned char)number;
  int saved = errno;
  if (write(signal_pipe[1], &byte, 1) < 0) {
    /* full: the relay has signals enough to look at */
  }
  errno = saved;
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* An id inside the session as the host numbers it, from the session's id map. */
static long host_id(long init, const char *map, long id) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/%s", init, map);
  FILE *file = fopen(path, "re");
  if (!file) die(path);
  long inside, outside, count;
  int fields = fscanf(file, "%ld %ld %ld", &inside, &outside, &count);
  fclose(file);
  if (fields != 3 || id < inside || id >= inside + count) {
    errno = ERANGE;
    die(path);
  }
  return outside + (id - inside);
}

/* A pseudo-terminal for the program, like ours, its slave the program's user's. */
static int open_terminal(int *slave, long init, long uid, long gid) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die("open a pseudo-terminal");
  if (grantpt(master) < 0 || unlockpt(master) < 0) die("unlock the pseudo-terminal");
  const char *name = ptsname(master);
  if (!name) die("name the pseudo-terminal");
  *slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0) die(name);
  if (fchown(*slave, (uid_t)host_id(init, "uid_map", uid), (gid_t)host_id(init, "gid_map", gid)) < 0 ||
      fchmod(*slave, 0600) < 0)
    die("give the pseudo-terminal to the session's user");
  struct termios modes;
  if (tcgetattr(STDIN_FILENO, &modes) == 0) tcsetattr(*slave, TCSANOW, &modes);
  struct winsize size;
  if (ioctl(STDIN_FILENO, TIOCGWINSZ, &size) == 0) ioctl(*slave, TIOCSWINSZ, &size);
  return master;
}

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LOW_WORD 0
#else
#define LOW_WORD 4
#endif

/*
 * A second wall: no program of the session may push input into a terminal (TIOCSTI) or use the
 * console's TIOCLINUX (which can paste), whatever terminal it finds. Inherited by every process
 * the program starts, and not removable.
 */
static void forbid_terminal_injection(void) {
#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#if defined(__x86_64__)
  struct sock_filter filter[] = {
      LOAD(arch),
      /* 64-bit and x32 calls share this arch; 32-bit calls have their own, ioctl being 54 there. */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 4),
      LOAD(nr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 6, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x40000000 | 514, 5, 0), /* x32's ioctl */
      ALLOW,
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, 2),
      LOAD(nr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 54, 1, 0),
      ALLOW,
#elif defined(__aarch64__)
  struct sock_filter filter[] = {
      LOAD(arch),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 0, 2),
      LOAD(nr),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 1, 0),
      ALLOW,
#else
#warning "no seccomp filter against TIOCSTI for this architecture: the pseudo-terminal is the only wall"
  return;
  struct sock_filter filter[] = {
#endif
      /* The request is an unsigned int: the kernel reads only the low 32 bits of the argument. */
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1]) + LOW_WORD),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      ALLOW,
  };
  struct sock_fprog program = {.len = sizeof filter / sizeof filter[0], .filter = filter};
  /* The session's root still, with CAP_SYS_ADMIN in its user namespace: no no_new_privs needed,
     so setuid programs the workspace installs keep working inside it. */
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) < 0) die("seccomp filter");
#undef LOAD
#undef ALLOW
}

static void default_signals(void) {
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/* In the session: becomes the program. `ends` are its standard descriptors. Never returns. */
static void run_program(long uid, long gid, const char *dir, char **argv, int terminal, const int ends[3]) {
  error_fd = ends[2]; /* the relay passes it on once the joiner has reported */
  if (setsid() < 0) die("setsid");
  if (terminal && ioctl(ends[0], TIOCSCTTY, 0) < 0) die("take the pseudo-terminal");
  for (int fd = 0; fd <= 2; fd++)
    if (dup2(ends[fd], fd) < 0) die("dup2");
  if (close_range(3, ~0U, 0) < 0) die("close inherited descriptors");
  error_fd = STDERR_FILENO;
  forbid_terminal_injection();
  if (setgroups(0, NULL) < 0) die("setgroups");
  if (setresgid(gid, gid, gid) < 0) die("setgid");
  if (setresuid(uid, uid, uid) < 0) die("setuid");
  /* Gone with the joiner (and so with the relay); an id change clears this, so it comes after. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die("parent-death signal");
  if (chdir(dir) < 0 && chdir("/") < 0) die("chdir");
  default_signals();
  execvp(argv[0], argv);
  fprintf(stderr, "upc-ns: cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(errno == ENOENT ? 127 : 126);
}

/*
 * The joiner: joins the session's namespaces and starts the program there (as a child: a PID
 * namespace takes in children only), reports its pid to the relay, and exits with its status. It
 * keeps nothing of the caller's: its standard descriptors are /dev/null before it joins.
 */
static void join_session(long init, long uid, long gid, const char *dir, char **argv, int terminal,
                         const int ends[3], int report) {
  static const struct {
    const char *name;
    int type;
  } order[] = {
      /* The PID namespace belongs to the host's user namespace: joined while still root. */
      {"pid", CLONE_NEWPID}, {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},
      {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
  };
  error_fd = report;
  default_signals();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die("parent-death signal");
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) die("/dev/null");
  for (int fd = 0; fd <= 2; fd++)
    if (dup2(null, fd) < 0) die("dup2");
  close(null);
  int fds[5];
  for (int i = 0; i < 5; i++) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/ns/%s", init, order[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) {
      dprintf(report, "upc-ns: the session (pid %ld) is not running: %s\n", init, strerror(errno));
      _exit(122);
    }
  }
  for (int i = 0; i < 5; i++) {
    if (setns(fds[i], order[i].type) < 0) die(order[i].name);
    close(fds[i]);
  }
  pid_t program = fork();
  if (program < 0) die("fork");
  if (program == 0) run_program(uid, gid, dir, argv, terminal, ends);
  char record[1 + sizeof program];
  record[0] = 'P';
  memcpy(record + 1, &program, sizeof program);
  if (write(report, record, sizeof record) != (ssize_t)sizeof record) _exit(FAIL);
  close(report);
  for (int fd = 0; fd < 3; fd++) close(ends[fd]);
  int status;
  while (waitpid(program, &status, 0) < 0) {
    if (errno != EINTR) _exit(FAIL);
  }
  _exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

/* What the relay copies, and where. */
struct relay {
  /* The program's pseudo-terminal master, or -1 (pipes). */
  int master;
  /* Where what we read on stdin goes (the master, or the program's stdin pipe); -1 once closed. */
  int input;
  /* The program's output and errors (the master alone on a terminal); -1 once ended. */
  int output[2];
  /* Read from stdin, not yet taken by the program. */
  char pending[16384];
  size_t pending_length;
};

/* Writes all of `length` bytes to a blocking or non-blocking `fd`; -1 if it is gone. */
static int write_all(int fd, const char *data, size_t length) {
  while (length > 0) {
    ssize_t n = write(fd, data, length);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd wait = {.fd = fd, .events = POLLOUT};
      poll(&wait, 1, -1);
      continue;
    }
    if (n <= 0) return -1;
    data += n;
    length -= (size_t)n;
  }
  return 0;
}

/* Copies what there is to read from the program's `from` to our `to`; 0 once it has ended. */
static int copy_out(int from, int to) {
  char buffer[16384];
  ssize_t n = read(from, buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (n <= 0) return 0; /* end of file, or EIO: the terminal's last user is gone */
  write_all(to, buffer, (size_t)n); /* if our side is gone, the program's output is dropped */
  return 1;
}

/* Once the program has ended: copies what it wrote that is still to come, for a moment at most. */
static void drain(struct relay *r) {
  long deadline = now_ms() + DRAIN_MS;
  for (int i = 0; i < 2; i++) {
    if (r->output[i] < 0) continue;
    /* A terminal passes the last output on a moment after the write; pipes have it at once. */
    struct pollfd ready = {.fd = r->output[i], .events = POLLIN};
    while (now_ms() < deadline && poll(&ready, 1, r->master >= 0 ? 100 : 0) > 0 &&
           copy_out(r->output[i], i == 0 ? STDOUT_FILENO : STDERR_FILENO)) {
    }
  }
}

static void set_nonblocking(int fd) {
  if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Reads the joiner's report: the program's pid, or what went wrong. 0 if it never started. */
static pid_t read_report(int report) {
  char text[4096];
  size_t length = 0;
  for (;;) {
    ssize_t n = read(report, text + length, sizeof text - 1 - length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || (length += (size_t)n) == sizeof text - 1) break;
  }
  pid_t program = 0;
  size_t message = 0;
  if (length >= 1 + sizeof program && text[0] == 'P') {
    memcpy(&program, text + 1, sizeof program);
    message = 1 + sizeof program;
  }
  if (length > message) write_all(STDERR_FILENO, text + message, length - message);
  return program;
}

static int enter(long init, long uid, long gid, const char *dir, char **argv) {
  struct relay r = {.master = -1, .input = -1, .output = {-1, -1}, .pending_length = 0};
  int ends[3] = {-1, -1, -1};
  int reading = 1; /* stdin is read and passed on */
  struct termios saved;
  int raw = 0;
  if (isatty(STDIN_FILENO)) {
    int slave;
    r.master = open_terminal(&slave, init, uid, gid);
    r.input = r.master;
    r.output[0] = r.master;
    ends[0] = slave;
    ends[1] = slave;
    ends[2] = slave;
    /* A job in the background leaves the terminal as it is, and does not read it. */
    if (tcgetpgrp(STDIN_FILENO) == getpgrp() && tcgetattr(STDIN_FILENO, &saved) == 0) {
      struct termios modes = saved;
      cfmakeraw(&modes);
      raw = tcsetattr(STDIN_FILENO, TCSADRAIN, &modes) == 0;
    } else {
      reading = 0;
    }
  } else {
    int pipes[3][2];
    for (int fd = 0; fd < 3; fd++)
      if (pipe2(pipes[fd], O_CLOEXEC) < 0) die("pipe");
    ends[0] = pipes[0][0];
    r.input = pipes[0][1];
    for (int fd = 1; fd < 3; fd++) {
      ends[fd] = pipes[fd][1];
      r.output[fd - 1] = pipes[fd][0];
    }
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) < 0 || pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe");
  struct sigaction action = {0};
  action.sa_handler = on_relay_signal;
  const int relayed[] = {SIGCHLD, SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  for (size_t i = 0; i < sizeof relayed / sizeof relayed[0]; i++) sigaction(relayed[i], &action, NULL);
  signal(SIGPIPE, SIG_IGN);

  pid_t joiner = fork();
  if (joiner < 0) die("fork");
  if (joiner == 0) {
    /* Only what the program gets, and the report, go with the joiner. */
    close(r.input);
    if (r.master < 0) {
      close(r.output[0]);
      close(r.output[1]);
    }
    close(report[0]);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    join_session(init, uid, gid, dir, argv, r.master >= 0, ends, report[1]);
  }
  close(report[1]);
  for (int fd = 0; fd < 3; fd++)
    if (fd == 0 || ends[fd] != ends[0]) close(ends[fd]);
  pid_t group = read_report(report[0]); /* returns once the program runs, or never will */
  close(report[0]);
  set_nonblocking(r.input);
  set_nonblocking(r.output[0]);
  set_nonblocking(r.output[1]);

  int status = -1;
  long kill_at = -1;
  while (status < 0) {
    struct pollfd watch[5] = {
        {.fd = signal_pipe[0], .events = POLLIN},
        {.fd = reading && r.pending_length == 0 ? STDIN_FILENO : -1, .events = POLLIN},
        {.fd = r.pending_length > 0 ? r.input : -1, .events = POLLOUT},
        {.fd = r.output[0], .events = POLLIN},
        {.fd = r.output[1], .events = POLLIN},
    };
    long wait_ms = kill_at < 0 ? -1 : kill_at - now_ms();
    int ready = poll(watch, 5, wait_ms < 0 && kill_at >= 0 ? 0 : (int)wait_ms);
    if (ready < 0 && errno != EINTR) break;
    if (kill_at >= 0 && now_ms() >= kill_at) {
      if (group > 0) kill(-group, SIGKILL); /* asked to end, and it did not in time */
      kill_at = -1;
    }
    if (ready <= 0) continue;
    if (watch[0].revents & POLLIN) {
      unsigned char number;
      while (read(signal_pipe[0], &number, 1) == 1) {
        if (number == SIGCHLD) {
          int code;
          if (waitpid(joiner, &code, WNOHANG) == joiner)
            status = WIFEXITED(code) ? WEXITSTATUS(code) : 128 + WTERMSIG(code);
        } else if (number == SIGWINCH) {
          struct winsize size;
          if (r.master >= 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &size) == 0) ioctl(r.master, TIOCSWINSZ, &size);
        } else if (group > 0) {
          kill(-group, number);
          if (number == SIGTERM && kill_at < 0) kill_at = now_ms() + TERM_GRACE_MS;
        }
      }
    }
    if (watch[1].revents) {
      ssize_t n = read(STDIN_FILENO, r.pending, sizeof r.pending);
      if (n > 0) {
        r.pending_length = (size_t)n;
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        reading = 0;
        if (r.master < 0) { /* the program reads the end of its input */
          close(r.input);
          r.input = -1;
        }
      }
    }
    if (watch[2].revents) {
      ssize_t n = write(r.input, r.pending, r.pending_length);
      if (n > 0) {
        memmove(r.pending, r.pending + n, r.pending_length - (size_t)n);
        r.pending_length -= (size_t)n;
      } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
        r.pending_length = 0; /* the program no longer takes input */
        reading = 0;
      }
    }
    for (int i = 0; i < 2; i++) {
      if (watch[3 + i].revents && !copy_out(r.output[i], i == 0 ? STDOUT_FILENO : STDERR_FILENO)) {
        if (r.master < 0) close(r.output[i]);
        r.output[i] = -1;
      }
    }
  }
  drain(&r);
  if (raw) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
  return status < 0 ? FAIL : status;
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
