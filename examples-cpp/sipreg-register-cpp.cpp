// sipreg-register-cpp: the C++ wrapper (sipreg.hpp) in use. Registers, holds
// for --hold seconds, disposes; prints "state <Name>" and "response <code>
// <reason>" lines like examples-c/sipreg-register, and with --trace one line
// per SIP message. Exit status 0 only if it reached Registered, then Terminated.
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>

#include "sipreg.hpp"

int main(int argc, char **argv) {
    std::string aor, password, registrar;
    unsigned long expires = 600;
    double hold = 0;
    bool trace = false;
    const char *usage = "usage: sipreg-register-cpp --aor URI [--password PW] [--registrar URI]"
                        " [--expires S] [--hold S] [--trace]\n";
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") { std::cout << usage; return 0; }
        if (a == "--trace") { trace = true; continue; }
        if (i + 1 >= argc) { std::cerr << "missing value for " << a << "\n"; return 2; }
        std::string v = argv[++i];
        if (a == "--aor") aor = v;
        else if (a == "--password") password = v;
        else if (a == "--registrar") registrar = v;
        else if (a == "--expires") expires = std::strtoul(v.c_str(), nullptr, 10);
        else if (a == "--hold") hold = std::strtod(v.c_str(), nullptr);
        else { std::cerr << "unknown option " << a << "\n" << usage; return 2; }
    }
    if (aor.empty()) {
        std::cerr << usage;
        return 2;
    }

    std::mutex m;
    std::condition_variable cv;
    sipreg::state current = sipreg::state::initial;
    bool registered = false, terminated = false;
    try {
        sipreg::user_agent ua(aor);
        if (!password.empty()) ua.set_password(password);
        if (trace)
            ua.on_trace([&](const sipreg::trace_record &t) {
                std::lock_guard<std::mutex> g(m);
                std::cout << "trace " << (t.sent ? "sent " : "received ") << t.transport << ' ' << t.local
                          << (t.sent ? " -> " : " <- ") << t.remote << ": "
                          << t.message.substr(0, t.message.find("\r\n")) << '\n';
            });
        sipreg::registerer r(ua, {static_cast<std::uint32_t>(expires), registrar, false});
        r.on_response([&](int code, const std::string &reason) {
            std::lock_guard<std::mutex> g(m);
            std::cout << "response " << code << ' ' << reason << '\n';
        });
        r.on_state([&](sipreg::state s) {
            std::lock_guard<std::mutex> g(m);
            std::cout << "state " << sipreg::to_string(s) << std::endl;
            current = s;
            registered = registered || s == sipreg::state::registered;
            terminated = terminated || s == sipreg::state::terminated;
            cv.notify_all();
        });
        r.register_();
        {
            std::unique_lock<std::mutex> lk(m);
            cv.wait_for(lk, std::chrono::seconds(40), [&] { return current != sipreg::state::initial; });
            if (current == sipreg::state::registered && hold > 0)
                cv.wait_for(lk, std::chrono::duration<double>(hold),
                            [&] { return current != sipreg::state::registered; });
        }
        r.dispose();
        std::unique_lock<std::mutex> lk(m);
        cv.wait_for(lk, std::chrono::seconds(10), [&] { return terminated; });
    } catch (const sipreg::error &e) {
        std::cerr << e.what() << '\n';
        return 1;
    }
    return registered && terminated ? 0 : 1;
}
