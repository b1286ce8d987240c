// shapes.cpp - a small class hierarchy with virtual dispatch; areas are kept
// as integers (twice the area) so the result is exact.
#include <memory>

#include "demo.hpp"

namespace demo {
namespace {

class Shape {
public:
    virtual ~Shape() = default;
    virtual std::uint32_t twice_area() const = 0;
    virtual std::uint32_t kind() const = 0;
};

class Rect : public Shape {
public:
    Rect(std::uint32_t w, std::uint32_t h) : w_(w), h_(h) {}
    std::uint32_t twice_area() const override { return 2 * w_ * h_; }
    std::uint32_t kind() const override { return 1; }

private:
    std::uint32_t w_, h_;
};

class Square : public Rect {
public:
    explicit Square(std::uint32_t s) : Rect(s, s) {}
    std::uint32_t kind() const override { return 2; }
};

class Triangle : public Shape {
public:
    Triangle(std::uint32_t b, std::uint32_t h) : b_(b), h_(h) {}
    std::uint32_t twice_area() const override { return b_ * h_; }
    std::uint32_t kind() const override { return 3; }

private:
    std::uint32_t b_, h_;
};

} // namespace

std::uint32_t shapes_run()
{
    std::vector<std::unique_ptr<Shape>> shapes;
    for (std::uint32_t i = 1; i <= 12; i++) {
        switch (i % 3) {
        case 0: shapes.emplace_back(new Rect(i, i + 3)); break;
        case 1: shapes.emplace_back(new Square(i)); break;
        default: shapes.emplace_back(new Triangle(i + 1, 2 * i)); break;
        }
    }
    std::uint32_t h = DEMO_FNV_OFFSET;
    std::uint32_t total = 0;
    for (const auto &s : shapes) {
        h = demo_mix(h, s->kind() * 1000u + s->twice_area());
        total += s->twice_area();
    }
    return demo_mix(h, total);
}

} // namespace demo
