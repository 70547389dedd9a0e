using System;
using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Daemon.Interop;

/// <summary>Opening, copying, reading, writing and waiting on file descriptors, and their flags.</summary>
internal static unsafe partial class Posix
{
    private const int FdCloseOnExec = 1;
    private const int LinuxNonBlocking = 0x800; // O_NONBLOCK, raw, as F_GETFL returns it (x86-64, arm64)
    private const long SysCloseRange = 436;
    private const int CloseRangeCloseOnExec = 4;

    public static int Open(string path, OpenFlags flags, FilePermissions mode, out int errno) =>
        RetryOnEintr((path, flags, mode), static s => Syscall.open(s.path, s.flags, s.mode), out errno);

    public static void Close(int fd)
    {
        // EINTR from close(2) on Linux still closes the descriptor: never retry.
        _ = Syscall.close(fd);
    }

    public static int Dup2(int from, int to, out int errno) =>
        RetryOnEintr((from, to), static s => Syscall.dup2(s.from, s.to), out errno);

    /// <summary>A close-on-exec copy of <paramref name="fd"/> at 3 or above, or -1.</summary>
    public static int Duplicate(int fd)
    {
        int copy = Syscall.fcntl(fd, FcntlCommand.F_DUPFD, 3);
        if (copy >= 0)
        {
            _ = SetCloseOnExec(copy, true);
        }

        return copy;
    }

    public static int Pipe(out int readEnd, out int writeEnd, out int errno) =>
        WithErrno(Syscall.pipe(out readEnd, out writeEnd), out errno);

    /// <summary>Sets or clears FD_CLOEXEC; false when the descriptor is not open.</summary>
    public static bool SetCloseOnExec(int fd, bool closeOnExec) =>
        SetFlag(fd, FcntlCommand.F_GETFD, FcntlCommand.F_SETFD, FdCloseOnExec, closeOnExec);

    /// <summary>
    /// Marks every descriptor from <paramref name="first"/> up close-on-exec in one call
    /// (close_range(2) with CLOSE_RANGE_CLOEXEC, Linux 5.11); false where the kernel lacks it.
    /// </summary>
    public static bool SetCloseOnExecFrom(int first) => SysCall(SysCloseRange, first, -1, CloseRangeCloseOnExec) == 0;

    /// <summary>Sets or clears O_NONBLOCK on the open file description of <paramref name="fd"/>.</summary>
    public static bool SetNonBlocking(int fd, bool nonBlocking) =>
        SetFlag(fd, FcntlCommand.F_GETFL, FcntlCommand.F_SETFL, LinuxNonBlocking, nonBlocking);

    // Either pair, F_GETFD/F_SETFD or F_GETFL/F_SETFL; writes back only when the flag changes.
    private static bool SetFlag(int fd, FcntlCommand get, FcntlCommand set, int flag, bool on)
    {
        int flags = Syscall.fcntl(fd, get);
        if (flags < 0)
        {
            return false;
        }

        int wanted = on ? flags | flag : flags & ~flag;
        return wanted == flags || Syscall.fcntl(fd, set, wanted) == 0;
    }

    /// <summary>True when <paramref name="fd"/> is open for writing only (O_WRONLY).</summary>
    public static bool IsWriteOnly(int fd)
    {
        int flags = Syscall.fcntl(fd, FcntlCommand.F_GETFL);
        return flags >= 0 && (flags & 3) == 1;
    }

    /// <summary>
    /// Writes all of <paramref name="data"/>, retrying on EINTR and short writes, and waiting up to
    /// a second for room when the descriptor is non-blocking and full (a caller's O_NONBLOCK pipe).
    /// </summary>
    public static bool WriteAll(int fd, ReadOnlySpan<byte> data, out int errno)
    {
        errno = 0;
        fixed (byte* start = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                var state = (fd, at: (IntPtr)(start + done), count: (ulong)(data.Length - done));
                long n = RetryOnEintr(state, static s => Syscall.write(s.fd, s.at, s.count), out errno);
                if (n >= 0)
                {
                    done += (int)n;
                }
                else if (errno != (int)Errno.EAGAIN || !WaitFor(fd, PollEvents.POLLOUT, 1000, out _))
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
            var state = (fd, at: (IntPtr)start, count: (ulong)buffer.Length, offset);
            return RetryOnEintr(state, static s => Syscall.pread(s.fd, s.at, s.count, s.offset), out errno);
        }
    }

    public static long Read(int fd, Span<byte> buffer, out int errno)
    {
        fixed (byte* start = buffer)
        {
            var state = (fd, at: (IntPtr)start, count: (ulong)buffer.Length);
            return RetryOnEintr(state, static s => Syscall.read(s.fd, s.at, s.count), out errno);
        }
    }

    /// <summary>Waits until <paramref name="fd"/> is readable or hung up; false on timeout.</summary>
    public static bool WaitReadable(int fd, int timeoutMilliseconds, out int errno) =>
        WaitFor(fd, PollEvents.POLLIN, timeoutMilliseconds, out errno);

    private static bool WaitFor(int fd, PollEvents events, int timeoutMilliseconds, out int errno)
    {
        var fds = new[] { new Pollfd { fd = fd, events = events } };
        long deadline = timeoutMilliseconds < 0 ? -1 : Environment.TickCount64 + timeoutMilliseconds;
        return RetryOnEintr((fds, deadline), static s => Syscall.poll(s.fds, 1, MillisecondsUntil(s.deadline)), out errno) > 0;
    }

    // A retry after EINTR waits only for what is left of the caller's timeout; -1 waits for ever.
    private static int MillisecondsUntil(long deadline) =>
        deadline < 0 ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long SysCall(long number, int arg1, int arg2, int arg3);
}
