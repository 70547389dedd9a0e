using System;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>
/// Binds "libc" and "MonoPosixHelper" to the right places at the first try. The runtime's own
/// probing tries some fifty names and folders for each ("libc.so" is a linker script, then
/// "liblibc.so" everywhere): measurable in a daemon that starts three processes. libc is bound at
/// start-up; Mono.Posix's native helper only when a user or group call needs it
/// (<see cref="EnsureHelper"/>), so a program copied without it runs every command but those.
/// </summary>
internal static class NativeLibraries
{
    private static readonly object _gate = new();
    private static bool _installed;
    private static bool _helperTried;
    private static IntPtr _libc;
    private static IntPtr _helper;
    private static string? _helperProblem;

    /// <summary>Installs the resolver for Daemon.Core, once; harmless if someone else did.</summary>
    public static void Install()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        lock (_gate)
        {
            if (_installed)
            {
                return;
            }

            _installed = true;

            // The process's global scope, where a C program's calls go: the C library it runs on
            // (glibc or musl, whatever its file is called) and any LD_PRELOAD interposer in front of
            // it (libfaketime, bench/c/stagetimes.c). A handle of libc.so.6 itself would bypass
            // those. Taken here, not inside the resolver: a resolver runs in the middle of a P/Invoke
            // whose errno is still to be read, and its own file look-ups were seen to clobber it.
            _libc = NativeLibrary.GetMainProgramHandle();
            TrySet(typeof(NativeLibraries).Assembly);
        }
    }

    /// <summary>
    /// Loads Mono.Posix's native helper, once, and binds Mono.Posix to it and to libc. Call it
    /// before the first Mono.Posix call (nearly every one needs the helper, starting with the
    /// type initializer of its <c>Syscall</c>), never from a resolver. Returns null when the helper
    /// is loaded (or off Linux), otherwise why not as one line, for the administrator.
    /// </summary>
    public static string? EnsureHelper()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        Install();
        lock (_gate)
        {
            if (!_helperTried)
            {
                _helperTried = true;
                _helperProblem = LoadHelper();
                TrySet(typeof(Mono.Unix.Native.Syscall).Assembly);
            }

            return _helperProblem;
        }
    }

    private static string? LoadHelper()
    {
        // Native AOT publishes the helper next to the executable; a JIT build has it where its
        // deps.json says.
        foreach (string candidate in NativeFolders.OfThisProgram())
        {
            string path = Path.Combine(candidate, "libMonoPosixHelper.so");
            if (File.Exists(path) && NativeLibrary.TryLoad(path, out _helper))
            {
                return null;
            }
        }

        return AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is not string { Length: > 0 }
            ? $"cannot load libMonoPosixHelper.so, Mono.Posix's native helper: it must be in {Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)}"
            : "cannot load libMonoPosixHelper.so, Mono.Posix's native helper: it is in none of the program's native library folders (runtimes/RID/native of Mono.Posix.NETStandard)";
    }

    private static void TrySet(Assembly assembly)
    {
        try
        {
            NativeLibrary.SetDllImportResolver(assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // The application installed its own resolver: it knows best.
        }
    }

    // IntPtr.Zero falls back to the runtime's own probing.
    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) => name switch
    {
        "libc" => _libc,
        "MonoPosixHelper" => _helper,
        _ => IntPtr.Zero,
    };
}
