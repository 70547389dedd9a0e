using System;
using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>This process's session, directory, umask and environment, and signals sent to other processes.</summary>
internal static partial class Posix
{
    internal const long SYS_pidfd_send_signal = 424;
    internal const long SYS_pidfd_open = 434;

    public static uint GetEffectiveUid() => Libc.geteuid();

    public static int CreateSession(out int errno) =>
        WithErrno(Libc.setsid(), out errno);

    public static void SetFileCreationMask(uint mask) => _ = Libc.umask(mask);

    public static int ChangeDirectory(string path, out int errno) =>
        WithErrno(Libc.chdir(path), out errno);

    /// <summary>
    /// Removes <paramref name="name"/> from both copies of the environment: .NET's own, which
    /// Process.Start passes on, and libc's, which posix_spawn and native code read.
    /// </summary>
    public static void UnsetEnvironment(string name)
    {
        Environment.SetEnvironmentVariable(name, null);
        _ = Libc.unsetenv(name);
    }

    public static int Kill(int pid, int signal, out int errno) =>
        WithErrno(Libc.kill(pid, signal), out errno);

    /// <summary>pidfd_open(2): a descriptor that names one process for good, immune to pid reuse.</summary>
    public static int PidfdOpen(int pid, out int errno) =>
        (int)WithErrno(Libc.syscall(SYS_pidfd_open, pid, 0), out errno);

    public static int PidfdSendSignal(int pidfd, int signal, out int errno) =>
        (int)WithErrno(Libc.syscall(SYS_pidfd_send_signal, pidfd, signal, IntPtr.Zero, 0), out errno);

    /// <summary>sysconf(_SC_CLK_TCK): the unit of the times in /proc/PID/stat (USER_HZ, 100 on Linux).</summary>
    public static long ClockTicksPerSecond() => Libc.sysconf(ScClkTck) is > 0 and var ticks ? ticks : 100;

    private const int ScClkTck = 2;

    private static partial class Libc
    {
        [LibraryImport("libc")]
        internal static partial long sysconf(int name);

        [LibraryImport("libc")]
        internal static partial uint geteuid();


        [LibraryImport("libc", SetLastError = true)]
        internal static partial int setsid();

        [LibraryImport("libc")]
        internal static partial uint umask(uint mask);

        [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int chdir(string path);

        [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int unsetenv(string name);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int kill(int pid, int signal);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial long syscall(long number, int arg1, int arg2);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial long syscall(long number, int arg1, int arg2, IntPtr arg3, uint arg4);
    }
}
