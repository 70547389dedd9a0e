using System;
using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Daemon.Interop;

/// <summary>This process's session, directory, umask and environment, and signals sent to other processes.</summary>
internal static partial class Posix
{
    private const long SysPidfdSendSignal = 424;
    private const long SysPidfdOpen = 434;

    public static uint GetEffectiveUid() => Syscall.geteuid();

    public static int CreateSession(out int errno) =>
        WithErrno(Syscall.setsid(), out errno);

    public static void SetFileCreationMask(uint mask) => Syscall.umask((FilePermissions)mask);

    public static int ChangeDirectory(string path, out int errno) =>
        WithErrno(Syscall.chdir(path), out errno);

    /// <summary>
    /// Removes <paramref name="name"/> from both copies of the environment: .NET's own, which
    /// Process.Start passes on, and libc's, which posix_spawn and native code read.
    /// </summary>
    public static void UnsetEnvironment(string name)
    {
        Environment.SetEnvironmentVariable(name, null);
        _ = Unsetenv(name);
    }

    public static int Kill(int pid, int signal, out int errno) =>
        WithErrno(Syscall.kill(pid, (Signum)signal), out errno);

    /// <summary>pidfd_open(2): a descriptor that names one process for good, immune to pid reuse.</summary>
    public static int PidfdOpen(int pid, out int errno) =>
        (int)WithErrno(SysCall(SysPidfdOpen, pid, 0), out errno);

    public static int PidfdSendSignal(int pidfd, int signal, out int errno) =>
        (int)WithErrno(SysCall(SysPidfdSendSignal, pidfd, signal, IntPtr.Zero, 0), out errno);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long SysCall(long number, int arg1, int arg2);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long SysCall(long number, int arg1, int arg2, IntPtr arg3, uint arg4);

    [LibraryImport("libc", EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Unsetenv(string name);
}
