using System;
using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>Starting a program with posix_spawn(3), and the C strings and signal sets it takes.</summary>
internal static unsafe partial class Posix
{
    private const int SpawnAttributeBytes = 512;
    private const short SpawnSetSigDef = 0x04;
    private const short SpawnSetSigMask = 0x08;
    private const int AccessExecute = 1;

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

    /// <summary>access(2) with X_OK: true when this process may execute <paramref name="path"/>.</summary>
    public static bool IsExecutable(string path) => Access(path, AccessExecute) == 0;

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

    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Access(string path, int mode);

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
}
