using Daemon.Hosting.Web;

return new WebDaemon(args =>
{
    var builder = WebApplication.CreateBuilder(args);
    var app = builder.Build();

    app.MapGet("/", () => "Hello World!");

    return app;                                        // instead of app.Run()
}).Main(args);
