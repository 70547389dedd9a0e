using System;
using System.Collections.Generic;
using System.IO;

namespace Daemon.Interop;

/// <summary>Where this program's own native files are, and nowhere else.</summary>
internal static class NativeFolders
{
    /// <summary>
    /// The program's folder (where Native AOT and RID-specific builds put native files), then the
    /// folders its host hands the runtime (a JIT build's runtimes/RID/native, from its deps.json).
    /// Never the system's: a system-wide file of the same name may belong to something else.
    /// </summary>
    public static IEnumerable<string> OfThisProgram()
    {
        yield return Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        string? hostFolders = AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") as string;
        foreach (string folder in (hostFolders ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            yield return Path.TrimEndingDirectorySeparator(folder);
        }
    }
}
