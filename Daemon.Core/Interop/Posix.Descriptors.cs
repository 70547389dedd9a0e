using System;
using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>Opening, copying, reading, writing and waiting on file descriptors, and their flags.</summary>
internal static unsafe partial class Posix
{
    internal const int F_GETFD = 1;
    internal const int F_SETFD = 2;
    internal const int F_GETFL = 3;
    internal const int F_SETFL = 4;
    internal const int F_DUPFD_CLOEXEC = 1030;
    internal const int FD_CLOEXEC = 1;
    internal const int O_ACCMODE = 3;
    internal const short POLLIN = 0x1;
    internal const short POLLOUT = 0x4;
    internal const long SYS_close_range = 436;
    internal const int CLOSE_RANGE_CLOEXEC = 4;
    internal const int RLIMIT_NOFILE = 7;

    /// <summary>
    /// O_NOFOLLOW for this process's architecture: 0400000 in the kernel's asm-generic table
    /// (x86-64 among others), 0100000 on arm, arm64 and powerpc.
    /// </summary>
    internal static readonly OpenFlags O_NOFOLLOW = NoFollowOn(RuntimeInformation.ProcessArchitecture);

    /// <summary>O_NOFOLLOW on <paramref name="architecture"/>.</summary>
    internal static OpenFlags NoFollowOn(Architecture architecture) =>
        architecture is Architecture.Arm64 or Architecture.Arm or Architecture.Ppc64le ? (OpenFlags)0x8000 : (OpenFlags)0x20000;

    public static int Open(string path, OpenFlags flags, uint mode, out int errno) =>
        RetryOnEintr((path, flags, mode), static s => Libc.open(s.path, (int)s.flags, s.mode), out errno);

    public static void Close(int fd)
    {
        // EINTR from close(2) on Linux still closes the descriptor: never retry.
        _ = Libc.close(fd);
    }

    public static int Dup2(int from, int to, out int errno) =>
        RetryOnEintr((from, to), static s => Libc.dup2(s.from, s.to), out errno);

    /// <summary>A close-on-exec copy of <paramref name="fd"/> at 3 or above, or -1.</summary>
    public static int Duplicate(int fd) => Libc.fcntl(fd, F_DUPFD_CLOEXEC, 3);

    /// <summary>
    /// The soft RLIMIT_NOFILE: one above the highest descriptor number open(2) may return; none
    /// (long.MaxValue) when unlimited or unknown.
    /// </summary>
    public static long DescriptorLimit()
    {
        ulong* limit = stackalloc ulong[2];
        return Libc.getrlimit(RLIMIT_NOFILE, limit) == 0 && limit[0] < long.MaxValue ? (long)limit[0] : long.MaxValue;
    }

    /// <summary>A pipe whose two ends are inherited by the programs this process starts.</summary>
    public static int Pipe(out int readEnd, out int writeEnd, out int errno)
    {
        int* ends = stackalloc int[2];
        int result = WithErrno(Libc.pipe(ends), out errno);
        readEnd = result == 0 ? ends[0] : -1;
        writeEnd = result == 0 ? ends[1] : -1;
        return result;
    }

    /// <summary>Sets or clears FD_CLOEXEC; false when the descriptor is not open.</summary>
    public static bool SetCloseOnExec(int fd, bool closeOnExec) =>
        SetFlag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, closeOnExec);

    /// <summary>
    /// Marks every descriptor from <paramref name="first"/> up close-on-exec in one call
    /// (close_range(2) with CLOSE_RANGE_CLOEXEC, Linux 5.11); false where the kernel lacks it.
    /// </summary>
    public static bool SetCloseOnExecFrom(int first) => Libc.syscall(SYS_close_range, first, -1, CLOSE_RANGE_CLOEXEC) == 0;

    /// <summary>Sets or clears O_NONBLOCK on the open file description of <paramref name="fd"/>.</summary>
    public static bool SetNonBlocking(int fd, bool nonBlocking) =>
        SetFlag(fd, F_GETFL, F_SETFL, (int)OpenFlags.O_NONBLOCK, nonBlocking);

    // Either pair, F_GETFD/F_SETFD or F_GETFL/F_SETFL; writes back only when the flag changes.
    private static bool SetFlag(int fd, int get, int set, int flag, bool on)
    {
        int flags = Libc.fcntl(fd, get, 0);
        if (flags < 0)
        {
            return false;
        }

        int wanted = on ? flags | flag : flags & ~flag;
        return wanted == flags || Libc.fcntl(fd, set, wanted) == 0;
    }

    /// <summary>True when <paramref name="fd"/> is open for writing only (O_WRONLY).</summary>
    public static bool IsWriteOnly(int fd)
    {
        int flags = Libc.fcntl(fd, F_GETFL, 0);
        return flags >= 0 && (flags & O_ACCMODE) == (int)OpenFlags.O_WRONLY;
    }

    /// <summary>
    /// Writes all of <paramref name="data"/>, retrying on EINTR and short writes, and waiting up to
    /// <paramref name="roomWaitMilliseconds"/> (a second) for room when the descriptor is
    /// non-blocking and full (a caller's O_NONBLOCK pipe).
    /// </summary>
    public static bool WriteAll(int fd, ReadOnlySpan<byte> data, out int errno, int roomWaitMilliseconds = 1000)
    {
        errno = 0;
        fixed (byte* start = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                var state = (fd, at: (IntPtr)(start + done), count: (nuint)(data.Length - done));
                long n = RetryOnEintr(state, static s => (long)Libc.write(s.fd, (byte*)s.at, s.count), out errno);
                if (n >= 0)
                {
                    done += (int)n;
                }
                else if (errno != Errno.EAGAIN || !WaitFor(fd, POLLOUT, roomWaitMilliseconds, out _))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>Reads at offset <paramref name="offset"/> without moving the file position.</summary>
    public static long ReadAt(int fd, Span<byte> buffer, long offset, out int errno)
    {
        fixed (byte* start = buffer)
        {
            var state = (fd, at: (IntPtr)start, count: (nuint)buffer.Length, offset);
            return RetryOnEintr(state, static s => (long)Libc.pread(s.fd, (byte*)s.at, s.count, s.offset), out errno);
        }
    }

    public static long Read(int fd, Span<byte> buffer, out int errno)
    {
        fixed (byte* start = buffer)
        {
            var state = (fd, at: (IntPtr)start, count: (nuint)buffer.Length);
            return RetryOnEintr(state, static s => (long)Libc.read(s.fd, (byte*)s.at, s.count), out errno);
        }
    }

    /// <summary>Waits until <paramref name="fd"/> is readable or hung up; false on timeout.</summary>
    public static bool WaitReadable(int fd, int timeoutMilliseconds, out int errno) =>
        WaitFor(fd, POLLIN, timeoutMilliseconds, out errno);

    private static bool WaitFor(int fd, short events, int timeoutMilliseconds, out int errno)
    {
        long deadline = timeoutMilliseconds < 0 ? -1 : Environment.TickCount64 + timeoutMilliseconds;
        return RetryOnEintr((fd, events, deadline), static s =>
        {
            var entry = new PollFd { fd = s.fd, events = s.events };
            return Libc.poll(&entry, 1, MillisecondsUntil(s.deadline));
        }, out errno) > 0;
    }

    // A retry after EINTR waits only for what is left of the caller's timeout; -1 waits for ever.
    private static int MillisecondsUntil(long deadline) =>
        deadline < 0 ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);

    /// <summary>struct pollfd.</summary>
    internal struct PollFd
    {
        public int fd;
        public short events;
        public short revents;
    }

    // open(2) and fcntl(2) are variadic in C; on x86-64 and arm64 Linux a fixed third argument is
    // passed where the callee's va_arg reads it.
    private static partial class Libc
    {
        [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int open(string path, int flags, uint mode);

        [LibraryImport("libc")]
        internal static partial int close(int fd);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int dup2(int from, int to);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int fcntl(int fd, int command, int argument);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int pipe(int* ends);

        [LibraryImport("libc")]
        internal static partial int getrlimit(int resource, ulong* limit);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial nint read(int fd, byte* buffer, nuint count);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial nint pread(int fd, byte* buffer, nuint count, long offset);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial nint write(int fd, byte* buffer, nuint count);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int poll(PollFd* fds, nuint count, int timeoutMilliseconds);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial long syscall(long number, int arg1, int arg2, int arg3);
    }
}
