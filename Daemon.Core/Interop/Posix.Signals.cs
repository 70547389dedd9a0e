using System;
using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>This process's own signal dispositions and mask.</summary>
internal static unsafe partial class Posix
{
    private const int SigSetMask = 2;
    private const int SigSetBytes = 128;
    private const int SigActionBytes = 256;

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

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static partial int SigAction(int signal, byte* action, byte* oldAction);

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial IntPtr SetSignal(int signal, IntPtr handler);

    [LibraryImport("libc", EntryPoint = "pthread_sigmask")]
    private static partial int PthreadSigmask(int how, byte* set, byte* oldSet);
}
