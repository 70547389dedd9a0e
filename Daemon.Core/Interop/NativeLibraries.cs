using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>
/// Binds "libc" and "MonoPosixHelper" to the right files at the first try. The runtime's own
/// probing tries some fifty names and folders for each ("libc.so" is a linker script, then
/// "liblibc.so" everywhere): measurable in a daemon that starts three processes.
/// </summary>
internal static class NativeLibraries
{
    private static readonly object _gate = new();
    private static bool _installed;
    private static IntPtr _libc;
    private static IntPtr _helper;
    private static string? _helperProblem;

    /// <summary>
    /// Why Mono.Posix's native helper could not be loaded, as one line; null when it was (or off
    /// Linux). Nearly every Mono.Posix call needs it, so a program copied without its
    /// <c>libMonoPosixHelper.so</c> must say so instead of dying at its first system call.
    /// </summary>
    public static string? HelperProblem
    {
        get
        {
            lock (_gate)
            {
                return _helperProblem;
            }
        }
    }

    /// <summary>Installs the resolver for Daemon.Core and Mono.Posix, once; harmless if someone else did.</summary>
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

            // Loaded here, not inside the resolver: a resolver runs in the middle of a P/Invoke whose
            // errno is still to be read, and its own file look-ups were seen to clobber it.
            _ = NativeLibrary.TryLoad("libc.so.6", out _libc);
            _helperProblem = LoadHelper();
            TrySet(typeof(NativeLibraries).Assembly);
            TrySet(typeof(Mono.Unix.Native.Syscall).Assembly);
        }
    }

    private static string? LoadHelper()
    {
        // Native AOT publishes the helper next to the executable. A JIT build has it where its
        // deps.json says, in the folders the host hands the runtime. Nowhere else: a system-wide
        // libMonoPosixHelper.so may belong to another Mono.
        string folder = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        var folders = new List<string> { folder };
        string? hostFolders = AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string;
        folders.AddRange((hostFolders ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        foreach (string candidate in folders)
        {
            string path = Path.Combine(candidate, "libMonoPosixHelper.so");
            if (File.Exists(path) && NativeLibrary.TryLoad(path, out _helper))
            {
                return null;
            }
        }

        return string.IsNullOrEmpty(hostFolders)
            ? $"cannot load libMonoPosixHelper.so, Mono.Posix's native helper: it must be in {folder}"
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
