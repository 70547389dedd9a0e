using System;
using System.Numerics;
using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Daemon.Interop;

/// <summary>
/// Every native call Daemon.Core makes, each declared once. Errno is read right after the call
/// (Mono.Posix's own <c>Stdlib.GetLastError</c> was seen clobbered by managed code in between).
/// Functions return the raw result and the errno; callers decide which errnos are expected.
/// </summary>
internal static unsafe partial class Posix
{
    public const int StandardInput = 0;
    public const int StandardOutput = 1;
    public const int StandardError = 2;

    private const int FdCloseOnExec = 1;
    private const int LinuxNonBlocking = 0x800; // O_NONBLOCK, raw, as F_GETFL returns it (x86-64, arm64)
    private const int SigSetMask = 2;
    private const int SigSetBytes = 128;
    private const int SigActionBytes = 256;
    private const int SpawnAttributeBytes = 512;
    private const short SpawnSetSigDef = 0x04;
    private const short SpawnSetSigMask = 0x08;
    private const long SysPidfdSendSignal = 424;
    private const long SysPidfdOpen = 434;
    private const long SysCloseRange = 436;
    private const int CloseRangeCloseOnExec = 4;

    /// <summary>The text of an errno, as strerror(3) gives it.</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>
    /// Returns <paramref name="result"/> and sets <paramref name="errno"/> to the call's errno when
    /// it failed (0 otherwise). Pass the native call itself as the argument: errno is read before
    /// any other managed code runs, since the next P/Invoke that sets errno overwrites it.
    /// </summary>
    private static T WithErrno<T>(T result, out int errno)
        where T : INumberBase<T>
    {
        errno = T.IsNegative(result) ? Marshal.GetLastPInvokeError() : 0;
        return result;
    }

    /// <summary>
    /// Makes <paramref name="call"/> on <paramref name="state"/> as <see cref="WithErrno"/> does, and
    /// again while it fails with EINTR. Only for calls that are safe to repeat: never close(2).
    /// </summary>
    /// <remarks>Pass a static lambda and its state as a tuple: nothing is allocated per call.</remarks>
    private static T RetryOnEintr<TState, T>(TState state, Func<TState, T> call, out int errno)
        where T : INumberBase<T>
    {
        T result;
        do
        {
            result = WithErrno(call(state), out errno);
        }
        while (errno == (int)Errno.EINTR);

        return result;
    }

    // ---- Descriptors -------------------------------------------------------------------------

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

    public static int Fstat(int fd, out Stat stat, out int errno) =>
        WithErrno(Syscall.fstat(fd, out stat), out errno);

    public static int Lstat(string path, out Stat stat, out int errno) =>
        WithErrno(Syscall.lstat(path, out stat), out errno);

    public static int Unlink(string path, out int errno) =>
        WithErrno(Syscall.unlink(path), out errno);

    public static int Truncate(int fd, out int errno) =>
        WithErrno(Syscall.ftruncate(fd, 0), out errno);

    public static int ChangeOwner(int fd, uint uid, uint gid, out int errno) =>
        WithErrno(Syscall.fchown(fd, uid, gid), out errno);

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

    // ---- POSIX record locks (fcntl), which name their holder ---------------------------------

    /// <summary>Takes (or releases) a whole-file lock without waiting; errno EAGAIN/EACCES means held.</summary>
    public static int SetLock(int fd, LockType type, out int errno) =>
        RetryOnEintr((fd, type), static s =>
        {
            Flock request = WholeFile(s.type);
            return Syscall.fcntl(s.fd, FcntlCommand.F_SETLK, ref request);
        }, out errno);

    /// <summary>
    /// Who holds a lock that conflicts with a write lock on the whole file: <paramref name="type"/>
    /// F_UNLCK when nobody, F_WRLCK or F_RDLCK otherwise, and <paramref name="holder"/> the owner's
    /// pid (-1 for an open file description lock, which names no process).
    /// </summary>
    public static int GetLock(int fd, out LockType type, out int holder, out int errno)
    {
        Flock probe = WholeFile(LockType.F_WRLCK);
        int result = WithErrno(Syscall.fcntl(fd, FcntlCommand.F_GETLK, ref probe), out errno);
        type = result == 0 ? probe.l_type : LockType.F_UNLCK;
        holder = type == LockType.F_UNLCK ? 0 : probe.l_pid;
        return result;
    }

    private static Flock WholeFile(LockType type) =>
        new() { l_type = type, l_whence = SeekFlags.SEEK_SET, l_start = 0, l_len = 0 };

    // ---- Paths ---------------------------------------------------------------------------------

    public static int Rename(string from, string to, out int errno) =>
        WithErrno(Syscall.rename(from, to), out errno);

    public static int ChangeMode(int fd, uint mode, out int errno) =>
        WithErrno(Syscall.fchmod(fd, (FilePermissions)mode), out errno);

    /// <summary>The f_type of the file system <paramref name="fd"/> lives on (statfs(2) magic numbers).</summary>
    public static int FileSystemType(int fd, out long type, out int errno)
    {
        // struct statfs starts with f_type (a long) on every 64-bit Linux ABI; 120 bytes in all.
        byte* buffer = stackalloc byte[256];
        int result = WithErrno(Fstatfs(fd, buffer), out errno);
        type = result == 0 ? *(long*)buffer : 0;
        return result;
    }

    // ---- Process ------------------------------------------------------------------------------

    public static uint GetEffectiveUid() => Syscall.geteuid();

    public static int CreateSession(out int errno) =>
        WithErrno(Syscall.setsid(), out errno);

    public static void SetFileCreationMask(uint mask) => Syscall.umask((FilePermissions)mask);

    public static int ChangeDirectory(string path, out int errno) =>
        WithErrno(Syscall.chdir(path), out errno);

    public static int Kill(int pid, int signal, out int errno) =>
        WithErrno(Syscall.kill(pid, (Signum)signal), out errno);

    /// <summary>pidfd_open(2): a descriptor that names one process for good, immune to pid reuse.</summary>
    public static int PidfdOpen(int pid, out int errno) =>
        (int)WithErrno(SysCall(SysPidfdOpen, pid, 0), out errno);

    public static int PidfdSendSignal(int pidfd, int signal, out int errno) =>
        (int)WithErrno(SysCall(SysPidfdSendSignal, pidfd, signal, IntPtr.Zero, 0), out errno);

    /// <summary>
    /// posix_spawn(3): starts <paramref name="path"/> with a clean signal state (nothing blocked,
    /// the stop and reload signals at their default action). glibc runs only its own code between
    /// its vfork-style clone and the exec, the same way .NET's Process.Start does, so it is safe in
    /// a multithreaded runtime, unlike fork(). Returns 0 or the errno.
    /// </summary>
    public static int Spawn(string path, string[] argv, string[] envp, ReadOnlySpan<int> defaultSignals, out int pid)
    {
        pid = 0;
        byte* attributes = stackalloc byte[SpawnAttributeBytes];
        byte* defaults = stackalloc byte[SigSetBytes];
        byte* mask = stackalloc byte[SigSetBytes];
        _ = SigEmptySet(defaults);
        _ = SigEmptySet(mask);
        foreach (int signal in defaultSignals)
        {
            _ = SigAddSet(defaults, signal);
        }

        IntPtr pathBytes = Marshal.StringToCoTaskMemUTF8(path);
        IntPtr* argvBytes = stackalloc IntPtr[argv.Length + 1];
        IntPtr* envpBytes = (IntPtr*)NativeMemory.AllocZeroed((nuint)(envp.Length + 1), (nuint)sizeof(IntPtr));
        try
        {
            ToCStrings(argv, argvBytes);
            ToCStrings(envp, envpBytes);
            int result = SpawnAttrInit(attributes);
            if (result != 0)
            {
                return result;
            }

            try
            {
                result = SpawnAttrSetFlags(attributes, SpawnSetSigDef | SpawnSetSigMask);
                result = result != 0 ? result : SpawnAttrSetSigDefault(attributes, defaults);
                result = result != 0 ? result : SpawnAttrSetSigMask(attributes, mask);
                int child = 0;
                result = result != 0 ? result : PosixSpawn(&child, (byte*)pathBytes, null, attributes, argvBytes, envpBytes);
                pid = child;
                return result;
            }
            finally
            {
                _ = SpawnAttrDestroy(attributes);
            }
        }
        finally
        {
            Marshal.FreeCoTaskMem(pathBytes);
            FreeCStrings(argvBytes);
            FreeCStrings(envpBytes);
            NativeMemory.Free(envpBytes);
        }
    }

    private static void ToCStrings(string[] strings, IntPtr* target)
    {
        for (int i = 0; i < strings.Length; i++)
        {
            target[i] = Marshal.StringToCoTaskMemUTF8(strings[i]);
        }

        target[strings.Length] = IntPtr.Zero;
    }

    private static void FreeCStrings(IntPtr* strings)
    {
        for (IntPtr* s = strings; *s != IntPtr.Zero; s++)
        {
            Marshal.FreeCoTaskMem(*s);
        }
    }

    public static void UnsetEnvironment(string name)
    {
        _ = Unsetenv(name);
    }

    // ---- Signals -------------------------------------------------------------------------------

    /// <summary>True when <paramref name="signal"/> is ignored (SIG_IGN) in this process.</summary>
    public static bool IsIgnored(int signal)
    {
        byte* old = stackalloc byte[SigActionBytes];
        new Span<byte>(old, SigActionBytes).Clear();
        return SigAction(signal, null, old) == 0 && *(IntPtr*)old == 1;
    }

    /// <summary>Restores the default action of <paramref name="signal"/>.</summary>
    public static void SetDefaultAction(int signal) => _ = SetSignal(signal, IntPtr.Zero);

    /// <summary>Unblocks every signal for the calling thread and the threads and programs it starts.</summary>
    public static void UnblockAllSignals()
    {
        byte* empty = stackalloc byte[SigSetBytes];
        new Span<byte>(empty, SigSetBytes).Clear();
        _ = PthreadSigmask(SigSetMask, empty, null);
    }

    // ---- Users and groups --------------------------------------------------------------------

    public static Passwd? GetUserByName(string name) => Syscall.getpwnam(name);

    public static Passwd? GetUserById(uint uid) => Syscall.getpwuid(uid);

    public static Group? GetGroupByName(string name) => Syscall.getgrnam(name);

    public static Group? GetGroupById(uint gid) => Syscall.getgrgid(gid);

    public static uint[] GetGroupList(string user)
    {
        Group[] groups = Syscall.getgrouplist(user);
        var ids = new uint[groups.Length];
        for (int i = 0; i < groups.Length; i++)
        {
            ids[i] = groups[i].gr_gid;
        }

        return ids;
    }

    public static int SetGroups(uint[] groups, out int errno) =>
        WithErrno(Syscall.setgroups(groups), out errno);

    public static int SetGid(uint gid, out int errno) =>
        WithErrno(Syscall.setresgid(gid, gid, gid), out errno);

    public static int SetUid(uint uid, out int errno) =>
        WithErrno(Syscall.setresuid(uid, uid, uid), out errno);

    // ---- libc entry points Mono.Posix lacks ---------------------------------------------------

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long SysCall(long number, int arg1, int arg2);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long SysCall(long number, int arg1, int arg2, int arg3);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long SysCall(long number, int arg1, int arg2, IntPtr arg3, uint arg4);

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static partial int SigAction(int signal, byte* action, byte* oldAction);

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial IntPtr SetSignal(int signal, IntPtr handler);

    [LibraryImport("libc", EntryPoint = "pthread_sigmask")]
    private static partial int PthreadSigmask(int how, byte* set, byte* oldSet);

    [LibraryImport("libc", EntryPoint = "posix_spawn")]
    private static partial int PosixSpawn(int* pid, byte* path, void* fileActions, byte* attributes, IntPtr* argv, IntPtr* envp);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    private static partial int SpawnAttrInit(byte* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    private static partial int SpawnAttrDestroy(byte* attributes);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    private static partial int SpawnAttrSetFlags(byte* attributes, short flags);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    private static partial int SpawnAttrSetSigDefault(byte* attributes, byte* signals);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    private static partial int SpawnAttrSetSigMask(byte* attributes, byte* signals);

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    private static partial int SigEmptySet(byte* set);

    [LibraryImport("libc", EntryPoint = "sigaddset")]
    private static partial int SigAddSet(byte* set, int signal);

    [LibraryImport("libc", EntryPoint = "fstatfs", SetLastError = true)]
    private static partial int Fstatfs(int fd, byte* buffer);

    [LibraryImport("libc", EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Unsetenv(string name);
}
